"""Whether a caller's reference revision is the current one (services/deals/reference.py)."""
from __future__ import annotations

import pytest

from services.deals.reference import is_current


@pytest.mark.parametrize(("known", "current", "expected"), [
    (7, 7, True), ("7", 7, True), (6, 7, False), (None, 7, False), ("", 7, False),
    ("seven", 7, False), (True, 1, False), ([7], 7, False), (7.0, 7, False),
])
def test_only_the_same_number_counts_as_current(known: object, current: int,
                                                expected: bool) -> None:
    assert is_current(known, current) is expected
