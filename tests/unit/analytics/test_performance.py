"""Manager performance against hand computations (services/analytics/performance.py)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from services.analytics.performance import Call, Deal, Task, performance

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def at(day: int, hour: int = 0) -> datetime:
    return START + timedelta(days=day, hours=hour)


def test_every_figure_by_hand():
    deals = [
        Deal(1, 7, at(0), at(10), "won", Decimal("1000.00")),  # 10 days
        Deal(2, 7, at(1), at(5), "won", Decimal("500.00")),  # 4 days
        Deal(3, 7, at(2), at(3), "lost", Decimal("50.00")),
        Deal(4, 7, at(3), None, None, Decimal("70.00")),  # open, no task
        Deal(5, 7, START - timedelta(days=40), at(1), "won", Decimal("100.00")),  # 41 days
        Deal(6, 8, at(4), None, None, Decimal("10.00")),  # open, with a task
        Deal(7, 8, at(5), NOW, "lost", Decimal("10.00")),  # closed after the period
    ]
    tasks = [Task(6, 8, NOW - timedelta(hours=1), None),  # overdue, open
             Task(4, 7, at(3), at(3, 6))]  # done 6 h after deal 4 was created
    calls = [Call(1, "outbound", "answered", at(0, 2)),  # 2 h after deal 1
             Call(1, "inbound", "missed", at(2)), Call(6, "inbound", "answered", at(4)),
             Call(6, "outbound", "answered", START - timedelta(days=1)),  # before the deal
             Call(6, "outbound", "answered", NOW),  # after the period: responds, not counted
             Call(None, "outbound", "answered", at(1))]  # matched to no deal
    receipts = [(1, Decimal("400.00"), date(2026, 11, 20)),
                (1, Decimal("1.00"), date(2026, 12, 1))]  # after the period
    moves = {2: at(1, 12), 3: at(3)}  # deal 2 moved 12 h in, deal 3 at 24 h
    rows = performance(deals, tasks, calls, receipts, moves, START, END, NOW)
    seven, eight = rows
    assert seven["manager_id"] == 7 and seven["rank"] == 1 and eight["rank"] == 2
    assert (seven["created"], seven["won"], seven["lost"]) == (4, 3, 1)
    assert seven["conversion"] == Decimal("75.0")
    assert seven["avg_cycle_days"] == Decimal("18.3")  # (10 + 4 + 41) / 3
    assert seven["median_cycle_days"] == Decimal("10.0")
    assert seven["won_amount"] == Decimal("1600.00")
    assert seven["received"] == Decimal("400.00")
    assert seven["open_without_task"] == 1 and seven["overdue_tasks"] == 0
    assert (seven["calls_made"], seven["calls_missed"]) == (1, 1)
    # deals 1 (2 h), 2 (12 h), 3 (24 h), 4 (6 h) created in the period: 11 h on average
    assert seven["first_response_hours"] == Decimal("11.0")
    assert (eight["created"], eight["won"], eight["lost"]) == (2, 0, 0)
    assert eight["conversion"] is None and eight["avg_cycle_days"] is None
    assert eight["open_without_task"] == 0 and eight["overdue_tasks"] == 1
    assert (eight["calls_made"], eight["calls_missed"]) == (0, 0)
    # deal 6: the call before its creation is no response, the one at NOW is
    assert eight["first_response_hours"] == Decimal(str(round((NOW - at(4)).total_seconds()
                                                              / 3600, 1)))


def test_nothing_at_all_is_no_row_and_no_division():
    assert performance([], [], [], [], {}, START, END, NOW) == []
