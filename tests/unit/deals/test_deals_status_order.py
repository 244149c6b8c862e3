"""Where a new status goes (services/deals/domain.py order_before_closed)."""
from __future__ import annotations

from services.deals.domain import order_before_closed

STATUSES = [(1, "open"), (2, "won"), (3, "lost"), (9, "open")]


def test_a_new_open_status_goes_right_before_the_won_and_lost_ones():
    assert order_before_closed(STATUSES, 9) == [1, 9, 2, 3]
    assert order_before_closed([(1, "open"), (4, "open"), (2, "won"), (9, "open")], 9) == [
        1, 4, 9, 2]


def test_nothing_moves_when_it_stands_right_or_is_an_outcome_or_unknown():
    assert order_before_closed([(1, "open"), (9, "open"), (2, "won")], 9) is None
    assert order_before_closed([(1, "open"), (9, "open")], 9) is None  # no outcome yet
    assert order_before_closed(STATUSES + [(10, "won")], 10) is None
    assert order_before_closed(STATUSES, 42) is None
