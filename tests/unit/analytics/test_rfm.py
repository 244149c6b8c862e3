"""RFM: quintile scores and segments, checked against hand computations."""
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import product
from zoneinfo import ZoneInfo

from services.analytics import loyalty
from services.analytics.loyalty import Paid


def test_every_score_combination_is_in_exactly_one_segment():
    seen: dict[str, int] = {}
    for r, f, m in product(range(1, 6), repeat=3):
        fitting = [rule.code for rule in loyalty.RULES if rule.fits(r, f, m)]
        assert fitting, (r, f, m)
        chosen = loyalty.segment(r, f, m)
        assert chosen == fitting[0]  # the first rule in the table decides
        seen[chosen] = seen.get(chosen, 0) + 1
    # by hand: champions 2*2*2=8; loyal R3-5 F3-5 = 45 less champions 8 = 37;
    # promising R4-5 F1-2 = 20; at risk R1-2 F3-5 = 30; hibernating R2-3 F1-2 = 20;
    # lost R1 F1-2 = 10 — together 125, each cell once
    assert seen == {"champions": 8, "loyal": 37, "promising": 20, "at_risk": 30,
                    "hibernating": 20, "lost": 10}


def test_segment_by_hand():
    assert loyalty.segment(5, 5, 5) == "champions"
    assert loyalty.segment(5, 5, 3) == "loyal"
    assert loyalty.segment(5, 1, 5) == "promising"
    assert loyalty.segment(1, 5, 5) == "at_risk"
    assert loyalty.segment(3, 2, 5) == "hibernating"
    assert loyalty.segment(1, 1, 5) == "lost"


def test_quintiles_of_ten_values_and_ties_share_a_score():
    score = loyalty.quintile_scorer([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert [score(v) for v in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    tied = loyalty.quintile_scorer([1, 1, 1, 1, 5])
    assert [tied(1), tied(5)] == [1, 5]


def test_scores_of_five_clients_by_hand():
    today = date(2026, 12, 1)
    rows = [Paid(1, date(2026, 11, 30), 12, Decimal("900000.00")),  # 1 day, most of all
            Paid(2, date(2026, 11, 1), 6, Decimal("300000.00")),
            Paid(3, date(2026, 9, 1), 3, Decimal("50000.00")),
            Paid(4, date(2026, 3, 1), 8, Decimal("400000.00")),
            Paid(5, date(2025, 6, 1), 1, Decimal("1000.00"))]
    scores = {s.client_id: s for s in loyalty.score_all(rows, today)}
    # five clients: each rank is its own quintile (rank 0 -> 1 ... rank 4 -> 5)
    assert [(scores[i].r, scores[i].f, scores[i].m) for i in range(1, 6)] == [
        (5, 5, 5), (4, 3, 3), (3, 2, 2), (2, 4, 4), (1, 1, 1)]
    assert scores[1].recency_days == 1 and scores[5].recency_days == 548
    assert [scores[i].segment for i in range(1, 6)] == [
        "champions", "loyal", "hibernating", "at_risk", "lost"]


def test_nobody_paid_nothing_to_score():
    assert loyalty.score_all([], date(2026, 1, 1)) == []


def test_only_moves_are_history():
    after = loyalty.score_all([Paid(1, date(2026, 1, 1), 1, Decimal("1")),
                               Paid(2, date(2026, 1, 2), 2, Decimal("2"))], date(2026, 1, 3))
    before = {1: after[0].segment, 2: "champions"}
    assert loyalty.changes(before, after) == [(2, "champions", after[1].segment)]
    assert loyalty.changes({}, after[:1]) == [(1, None, after[0].segment)]


def test_the_nightly_run_is_due_at_three_local_time():
    moscow = ZoneInfo("Europe/Moscow")
    # 23:00 UTC is 02:00 of the 2nd in Moscow: the same night's 03:00
    assert loyalty.next_night(datetime(2026, 12, 1, 23, 0, tzinfo=UTC), moscow) == \
        datetime(2026, 12, 2, 3, 0, tzinfo=moscow)
    # 00:00 UTC is 03:00 in Moscow: that one is now, the next is a day later
    assert loyalty.next_night(datetime(2026, 12, 2, 0, 0, tzinfo=UTC), moscow) == \
        datetime(2026, 12, 3, 3, 0, tzinfo=moscow)


def test_segment_events_split_the_moves_a_thousand_to_an_event():
    from datetime import UTC, datetime

    from services.analytics.loyalty import Change, segment_events
    at = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    moves = [Change(i, None if i % 2 else "lost", "loyal") for i in range(1, 2502)]
    moves.append(Change(9999, "lost", None))  # dropped out: its receipts taken back
    events = segment_events(moves, at)
    assert [len(e["changes"]) for e in events] == [1000, 1000, 502]
    assert {e["computed_at"] for e in events} == {"2026-03-01T00:00:00+00:00"}
    assert events[0]["changes"][0] == {"client_id": 1, "segment": "loyal", "previous": None}
    assert events[0]["changes"][1] == {"client_id": 2, "segment": "loyal", "previous": "lost"}
    assert events[-1]["changes"][-1] == {"client_id": 9999, "segment": None,
                                         "previous": "lost"}
    assert segment_events([], at) == []
