"""A win probability set by hand on a deal (services/deals/domain.py)."""
from __future__ import annotations

import pytest

from services.deals.domain import manual_probability, validate_deal_changes
from services.kit.errors import ValidationError


@pytest.mark.parametrize(("given", "kept"), [("60", 60), (0, 0), ("100", 100), (" 7 % ", 7),
                                              ("", None), (None, None)])
def test_whole_percent_or_cleared(given, kept):
    assert manual_probability(given) == kept
    assert validate_deal_changes({"probability": given}) == {"probability": kept}


@pytest.mark.parametrize("given", ["101", "-1", "12.5", "много", True])
def test_anything_else_is_refused_naming_the_field(given):
    with pytest.raises(ValidationError) as refused:
        manual_probability(given)
    assert refused.value.field == "probability" and refused.value.key == "probability.invalid"
