"""The win-probability estimator against hand computations (services/analytics/probability.py)."""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.analytics import probability as p

ORDER = ["new", "qual"]
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
BASE = {"type": "none", "manager": "1", "client_kind": "none", "client_group": "none",
        "age": "0-7", "amount": "0-10000", "source": "manual"}


def deal(i: int, won: bool, manager: str = "1", type_id: int | None = None,
         day: int = 0, **values: str) -> p.Outcome:
    return p.Outcome(deal_id=i, type_id=type_id, won=won, lost_at=None if won else "new",
                     values={**BASE, "manager": manager,
                             "type": str(type_id) if type_id else "none", **values},
                     closed_at=T0 + timedelta(days=day))


def history() -> list[p.Outcome]:
    """At "new": manager 1 won 6 lost 2, manager 2 won 1 lost 4 (W=7, L=6); every other
    feature has one value, so only the manager tells deals apart."""
    rows = [deal(i, True) for i in range(6)] + [deal(10 + i, False) for i in range(2)]
    rows += [deal(20, True, "2")] + [deal(30 + i, False, "2") for i in range(4)]
    return rows


def test_won_passes_every_status_lost_counts_up_to_where_it_was_lost():
    won = deal(1, True)
    lost_at_qual = p.Outcome(2, None, False, "qual", BASE, T0)
    created_lost = p.Outcome(3, None, False, None, BASE, T0)
    assert p.passed(won, ["new", "qual", "proposal"]) == ["new", "qual", "proposal"]
    assert p.passed(lost_at_qual, ["new", "qual", "proposal"]) == ["new", "qual"]
    assert p.passed(created_lost, ORDER) == []
    assert p.contributions(created_lost, ORDER) == {}


def test_estimate_by_hand():
    model = p.Model(p.count(history(), ORDER))
    # prior odds (7+1)/(6+1) = 8/7; P(m1|won) = (6+1)/(7+3) = 0.7, P(m1|lost) = (2+1)/(6+3)
    # = 1/3: odds 8/7 * 2.1 = 2.4 -> 70.6 %; without the manager 8/15 = 53.3 %: +17 p.p.
    one = model.estimate("new", None, BASE)
    assert one.percent == 71
    assert one.model == "pooled" and one.examples == 13
    assert one.factors == (p.Factor("manager", "1", 17),)
    # P(m2|won) = 2/10, P(m2|lost) = 5/9: odds 8/7 * 0.36 = 0.4114 -> 29.2 %: -24 p.p.
    two = model.estimate("new", None, {**BASE, "manager": "2"})
    assert two.percent == 29
    assert two.factors == (p.Factor("manager", "2", -24),)
    assert math.isclose(model.log_odds("new", None, BASE) or 0, math.log(2.4))


def test_too_little_history_says_so_instead_of_a_number():
    model = p.Model(p.count(history(), ORDER))
    # only the 7 won deals stood at "qual": fewer than MIN_STATUS_EXAMPLES (10)
    answer = model.estimate("qual", None, BASE)
    assert answer.percent is None and answer.reason == "too_little_history"
    assert answer.examples == 7
    assert p.Model({}).estimate("new", None, BASE).percent is None
    assert p.Model({}).log_odds("new", None, BASE) is None


def test_a_value_seen_fewer_than_the_minimum_says_nothing():
    rows = history() + [deal(40, True, "3")]
    model = p.Model(p.count(rows, ORDER))
    prior_only = p.percent(math.log((8 + 1) / (6 + 1)))
    assert model.estimate("new", None, {**BASE, "manager": "3"}).percent == prior_only
    assert model.estimate("new", None, {**BASE, "manager": "3"}).factors == ()
    # an unseen value too
    assert model.estimate("new", None, {**BASE, "manager": "99"}).percent == prior_only
    # four observations still not enough, the fifth makes it count
    four = history() + [deal(50 + i, True, "3") for i in range(4)]
    assert p.Model(p.count(four, ORDER)).estimate(
        "new", None, {**BASE, "manager": "3"}).factors == ()
    five = history() + [deal(50 + i, True, "3") for i in range(5)]
    assert p.Model(p.count(five, ORDER)).estimate(
        "new", None, {**BASE, "manager": "3"}).factors[0].feature == "manager"


def test_a_feature_with_one_value_seen_enough_moves_nothing():
    rows = [deal(i, True) for i in range(8)] + [deal(10 + i, False) for i in range(4)]
    model = p.Model(p.count(rows, ORDER))
    # prior only: (8+1)/(4+1) = 1.8 -> 64.3 %
    assert model.estimate("new", None, BASE).percent == 64
    assert model.estimate("new", None, BASE).factors == ()


def test_clamped_to_1_and_99_percent():
    won = p.Model(p.count([deal(i, True) for i in range(200)], ORDER))
    lost = p.Model(p.count([deal(i, False) for i in range(200)], ORDER))
    assert won.estimate("new", None, BASE).percent == 99  # 201/202 = 99.5 %
    assert lost.estimate("new", None, BASE).percent == 1  # 1/202 = 0.5 %
    assert p.percent(50.0) == 99 and p.percent(-50.0) == 1 and p.percent(0.0) == 50


def test_a_type_with_enough_history_has_its_own_model_others_the_pooled_one():
    # type 5: 30 deals (20 won, 10 lost); type 6: 12 deals, all lost
    rows = ([deal(i, True, type_id=5) for i in range(20)]
            + [deal(100 + i, False, type_id=5) for i in range(10)]
            + [deal(200 + i, False, type_id=6) for i in range(12)])
    model = p.Model(p.count(rows, ORDER))
    own = model.estimate("new", 5, {**BASE, "type": "5"})
    assert own.model == "type" and own.examples == 30
    assert own.percent == 66  # (20+1)/(10+1) = 1.909 -> 65.6 %
    pooled = model.estimate("new", 6, {**BASE, "type": "6"})
    assert pooled.model == "pooled" and pooled.examples == 42
    # pooled prior 21/23; type 6: P(6|won) = (0+1)/(20+3), P(6|lost) = (12+1)/(22+3)
    odds = 21 / 23 * ((1 / 23) / (13 / 25))
    assert pooled.percent == round(100 * odds / (1 + odds))
    assert pooled.factors[0].feature == "type" and pooled.factors[0].points < 0


def test_top_three_factors_biggest_first():
    # four features, each agreeing with the outcome more or less often; the deal asked has
    # the winning value of two and the losing value of two, so it stays mid-range
    rows = []
    for i in range(60):
        won = i % 2 == 0
        rows.append(deal(i, won, manager="1" if (i % 3 != 0) == won else "2",
                         source="form" if (i % 5 != 0) == won else "call",
                         amount="0-10000" if (i % 7 != 0) == won else "10001-100000",
                         age="0-7" if (i % 4 != 0) == won else "8-30"))
    model = p.Model(p.count(rows, ORDER))
    answer = model.estimate("new", None, {**BASE, "manager": "2", "source": "form",
                                           "amount": "10001-100000", "age": "0-7"})
    assert 10 < (answer.percent or 0) < 90
    assert len(answer.factors) == 3
    points = [abs(f.points) for f in answer.factors]
    assert all(points) and points == sorted(points, reverse=True)
    signs = {f.feature: f.points > 0 for f in answer.factors}
    assert signs == {"source": True, "amount": False, "age": True}
    # the weakest (manager: two in three agree) is the one left out
    assert "manager" not in {f.feature for f in answer.factors}


def test_buckets_and_features():
    assert [p.bucket(v, (7, 30)) for v in (0, 7, 8, 30, 31)] == [
        "0-7", "0-7", "8-30", "8-30", "31+"]
    assert p.amount_bucket(Decimal("10000.49")) == "0-10000"
    assert p.amount_bucket(Decimal("10000.50")) == "10001-100000"
    assert p.age_bucket(T0, T0 + timedelta(days=7, hours=23)) == "0-7"
    values = p.features(type_id=None, manager_id=3, client_kind=None, client_group_id=None,
                        created_at=T0, at=T0 + timedelta(days=200),
                        amount=Decimal("2000000"), source=None)
    assert values == {"type": "none", "manager": "3", "client_kind": "none",
                      "client_group": "none", "age": "181+", "amount": "1000001+",
                      "source": "manual"}


def test_incremental_counts_equal_a_recount_and_undo_exactly():
    rows = history()
    counts = p.count(rows[:-1], ORDER)
    p.add(counts, p.contributions(rows[-1], ORDER))
    assert counts == p.count(rows, ORDER)
    p.add(counts, p.contributions(rows[-1], ORDER), sign=-1)
    recount = p.count(rows[:-1], ORDER)
    assert {k: v for k, v in counts.items() if v != [0, 0]} == recount


def test_brier_and_calibration_by_hand():
    pairs = [(0.9, True), (0.8, False), (0.1, False), (0.05, True)]
    # (0.1^2 + 0.8^2 + 0.1^2 + 0.95^2) / 4
    assert math.isclose(p.brier(pairs), (0.01 + 0.64 + 0.01 + 0.9025) / 4)
    table = p.calibration(pairs)
    assert [r.count for r in table] == [2, 0, 0, 0, 0, 0, 0, 1, 1, 0]
    assert (table[0].low, table[0].high) == (0, 10)
    assert math.isclose(table[0].predicted, 0.075) and table[0].observed == 0.5
    assert table[7].observed == 0.0 and table[8].observed == 1.0
    assert math.isnan(p.brier([]))


def test_backtest_never_peeks_at_the_future():
    # 13 deals closed on day 0 train; the test deals close on days 10 and 11
    rows = history()
    tests = [deal(100, True, day=10), deal(101, False, "2", day=10), deal(102, True, day=11)]
    scores, _ = p.backtest_scores(rows + tests, ORDER, T0 + timedelta(days=10))
    # flipping the outcome of later deals, or the deal's own, changes no prediction
    # made before them
    flipped = [p.Outcome(t.deal_id, t.type_id, not t.won, None if not t.won else "new",
                         t.values, t.closed_at) for t in tests]
    again, _ = p.backtest_scores(rows + flipped, ORDER, T0 + timedelta(days=10))
    day10 = {(s.deal_id, s.status): s.predicted for s in scores if s.deal_id in (100, 101)}
    assert day10 == {(s.deal_id, s.status): s.predicted for s in again
                     if s.deal_id in (100, 101) and s.status == "new"}
    # the day-10 deals are scored by the model of the 13 day-0 deals (71 % and 29 %)
    assert round(100 * day10[(100, "new")]) == 71 and round(100 * day10[(101, "new")]) == 29
    # deal 102 (day 11) is scored with the day-10 deals learnt
    assert {s.deal_id for s in scores if s.status == "new"} == {100, 101, 102}
    third = next(s for s in scores if s.deal_id == 102 and s.status == "new")
    assert third.predicted != day10[(100, "new")]
    # the baseline is the share won at the status in the same training: 7 / 13
    assert math.isclose(next(s.baseline for s in scores if s.deal_id == 100), 7 / 13)


def test_backtest_skips_what_had_too_little_history():
    rows = history() + [deal(100, True, day=10)]
    scores, skipped = p.backtest_scores(rows, ORDER, T0 + timedelta(days=10))
    # deal 100 is scored at "new" and skipped at "qual" (7 won deals only)
    assert [(s.deal_id, s.status) for s in scores] == [(100, "new")]
    assert skipped == 1
    result = p.backtest(rows, ORDER, T0 + timedelta(days=10))
    assert result.examples == 1
    assert math.isclose(result.brier, (1 - 0.7058823529) ** 2, rel_tol=1e-6)
    assert math.isclose(result.baseline_brier, (1 - 7 / 13) ** 2)


@pytest.mark.parametrize("status", ["new", "qual"])
def test_no_history_at_all_is_never_a_division_by_zero(status):
    assert p.Model({}).estimate(status, 5, BASE).percent is None
    assert p.backtest([], ORDER, T0).examples == 0


def test_on_a_history_where_type_and_manager_matter_the_estimate_beats_the_baseline():
    from bench.probability import ORDER as FUNNEL
    from bench.probability import history as generated

    rows = generated(3000, seed=3)
    since = max(o.closed_at for o in rows) - timedelta(days=60)
    result = p.backtest(rows, FUNNEL, since)
    assert result.examples > 500
    assert result.brier < result.baseline_brier
    # the baseline is one figure per status: at most five bins hold its predictions
    assert sum(1 for row in result.baseline_calibration if row.count) <= len(FUNNEL)


def test_sources_in_the_estimators_words():
    from services.analytics.probability import features, source_of
    assert [source_of(v) for v in ("web_form", "Call", "email", "manual", "", None)] == [
        "form", "call", "email", "manual", None, None]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    values = features(type_id=None, manager_id=None, client_kind=None, client_group_id=None,
                      created_at=at, at=at, amount=Decimal("1"), source=source_of("web_form"))
    assert values["source"] == "form"


def test_what_a_client_event_tells_of_a_field():
    from services.analytics.clients_dim import _MISSING, told
    assert told({"kind": "company"}, "kind") == "company"
    assert told({"client_group_id": None}, "client_group_id") is None  # out of any group
    assert told({"changes": {"kind": ["person", "company"]}}, "kind") == "company"
    assert told({"changes": {"kind": {"from": "person", "to": "company"}}}, "kind") == \
        "company"
    assert told({"changes": {"name": ["a", "b"]}}, "kind") is _MISSING
    assert told({}, "client_group_id") is _MISSING


def test_the_client_dimension_wins_over_the_deals_own_facts():
    from services.analytics.clients_dim import Client
    from services.analytics.models import DealFacts
    from services.analytics.winrate import _client
    fact = DealFacts(deal_id=1, client_kind="person", client_group_id=5)
    assert _client(fact, None) == ("person", 5)
    assert _client(fact, Client("company", None)) == ("company", None)  # left its group
    assert _client(fact, Client(None, 7)) == ("person", 7)  # kind not told yet
    assert _client(None, None) == (None, None)
