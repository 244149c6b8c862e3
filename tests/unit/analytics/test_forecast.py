"""The weighted pipeline against hand computations (services/analytics/forecast.py)."""
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from services.analytics import forecast as f

TODAY = date(2026, 12, 2)


def deal(i: int, amount: str, percent: int | None, manager: int | None = 1,
         type_id: int | None = None, created: datetime = datetime(2026, 11, 20, tzinfo=UTC),
         **more: object) -> f.OpenDeal:
    return f.OpenDeal(i, manager, type_id, Decimal(amount), created, percent, **more)  # type: ignore[arg-type]


def test_typical_cycle_per_type_with_a_pooled_fallback():
    won = [(1, d) for d in (10, 20, 30, 40, 50)] + [(2, 5), (2, 7)] + [(None, 100)]
    cycles = f.typical_cycles(won)
    assert cycles[1] == 30  # five won deals of type 1: their median
    assert 2 not in cycles  # two are too few
    # every won deal, sorted 5 7 10 20 30 40 50 100: median (20 + 30) / 2
    assert cycles[None] == 25
    assert f.typical_cycles([(1, 3.0)]) == {None: f.DEFAULT_CYCLE_DAYS}


def test_expected_close_planned_date_else_cycle_never_in_the_past():
    cycles = {1: 45.0, None: 10.0}
    assert f.expected_close(deal(1, "1", 50, planned_close=date(2027, 3, 1)), cycles,
                            TODAY) == date(2027, 3, 1)
    # created 20 Nov + 45 days = 4 Jan; a type without a cycle uses the pooled 10 days:
    # 30 Nov is past, so today
    assert f.expected_close(deal(1, "1", 50, type_id=1), cycles, TODAY) == date(2027, 1, 4)
    assert f.expected_close(deal(1, "1", 50, type_id=9), cycles, TODAY) == TODAY
    assert f.expected_close(deal(1, "1", 50, planned_close=date(2026, 1, 1)), cycles,
                            TODAY) == TODAY


def test_pipeline_by_hand():
    cycles = {1: 45.0, None: 10.0}
    deals = [deal(1, "100000.00", 30),  # Dec: 30 000
             deal(2, "50000.00", 71, type_id=1),  # Jan: 35 500
             deal(3, "1000.00", 40, manager=2, manual_percent=90),  # by hand: 900, Dec
             deal(4, "7777.00", None, manager=2),  # no estimate: apart
             deal(5, "10.00", 50, planned_close=date(2028, 1, 1))]  # later: 5
    answer = f.pipeline(deals, cycles, TODAY, {1: "Продажи", 2: "Продажи"}, months=3)
    assert answer["months"] == ["2026-12", "2027-01", "2027-02"]
    total = answer["total"]
    assert total["2026-12"] == {"deals": 2, "amount": Decimal("101000.00"),
                                "weighted": Decimal("30900.00")}
    assert total["2027-01"]["weighted"] == Decimal("35500.00")
    assert total["2027-02"]["deals"] == 0
    assert total["later"]["weighted"] == Decimal("5.00")
    assert answer["weighted"] == Decimal("66405.00")
    assert answer["unestimated"] == {"deals": 1, "amount": Decimal("7777.00")}
    assert [m["manager_id"] for m in answer["managers"]] == [1, 2]
    assert answer["managers"][1]["weighted"] == Decimal("900.00")
    assert answer["departments"][0]["department"] == "Продажи"
    assert answer["departments"][0]["weighted"] == answer["weighted"]


def test_weighted_rounds_half_up_to_kopecks_and_months_roll_over_the_year():
    assert f.weighted(Decimal("0.05"), 50) == Decimal("0.03")
    assert f.months_from(date(2026, 11, 30), 3) == ["2026-11", "2026-12", "2027-01"]
    assert f.pipeline([], {}, TODAY, {})["weighted"] == Decimal("0.00")


def test_each_listed_deal_says_whether_its_planned_date_or_the_cycle_dated_it():
    cycles = {1: 45.0, None: 10.0}
    deals = [deal(1, "100000.00", 30, planned_close=date(2027, 2, 15)),  # Feb by plan: 30 000
             deal(2, "50000.00", 71, type_id=1),  # 20 Nov + 45 days = 4 Jan: 35 500
             deal(3, "1000.00", 40, manual_percent=90),  # 10 days: past, so today: 900
             deal(4, "7777.00", None)]  # no estimate: not listed
    answer = f.pipeline(deals, cycles, TODAY, {}, months=3, listed=2)
    # biggest weighted first, only two asked
    assert [(d["deal_id"], d["weighted"], d["close_on"], d["basis"], d["cycle_days"],
             d["month"]) for d in answer["deals"]] == [
        (2, Decimal("35500.00"), date(2027, 1, 4), f.CYCLE, 45.0, "2027-01"),
        (1, Decimal("30000.00"), date(2027, 2, 15), f.PLANNED, None, "2027-02")]
    every = f.pipeline(deals, cycles, TODAY, {}, months=1, listed=10)["deals"]
    assert [(d["deal_id"], d["month"], d["manual"], d["percent"]) for d in every] == [
        (2, "later", False, 71), (1, "later", False, 30), (3, "2026-12", True, 90)]
    assert every[2]["close_on"] == TODAY and every[2]["cycle_days"] == 10.0
    # the month sums follow the planned date, not the cycle
    assert answer["total"]["2027-02"]["weighted"] == Decimal("30000.00")
    assert f.pipeline(deals, cycles, TODAY, {}, months=3)["deals"] == []


def test_listed_deals_of_equal_weight_go_by_deal_id_and_stop_at_the_limit():
    deals = [deal(i, "1000.00", 50) for i in (5, 3, 9, 1)] + [deal(7, "3000.00", 50)]
    listed = f.pipeline(deals, {None: 10.0}, TODAY, {}, months=1, listed=3)["deals"]
    # 7 weighs 1 500.00; the others 500.00 each, the lowest ids first
    assert [(d["deal_id"], d["weighted"]) for d in listed] == [
        (7, Decimal("1500.00")), (1, Decimal("500.00")), (3, Decimal("500.00"))]
