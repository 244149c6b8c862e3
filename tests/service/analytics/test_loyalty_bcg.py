"""RFM and the BCG matrix in the real analytics service, fed by events on a real RabbitMQ
and stored in a real database; the deals service (real) tells the statuses and types."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services.analytics.models import RfmHistory
from services.kit.errors import Forbidden, ValidationError
from tests.support.infra import wait_until

TODAY = date.today()
NOW = datetime.now(UTC)


def deal(deal_id: int, client_id: int, status: str = "new", type_id: int | None = None,
         amount: str = "1000.00", closed_days_ago: int | None = None) -> list[tuple[str, dict]]:
    created = (NOW - timedelta(days=400)).isoformat()
    events = [("deal_created", {"deal_id": deal_id, "name": f"Сделка {deal_id}",
                                "client_id": client_id, "client_name": "ООО",
                                "manager_id": 7, "status": "new", "stage": None,
                                "type_id": type_id, "amount": amount, "version": 1,
                                "created_at": created})]
    if status == "won":
        events.append(("deal_status_changed", {
            "deal_id": deal_id, "client_id": client_id, "manager_id": 7, "type_id": type_id,
            "from_status": "new", "to_status": "won", "to_status_kind": "won",
            "from_stage": None, "to_stage": None, "amount": amount, "version": 2,
            "changed_at": (NOW - timedelta(days=closed_days_ago or 0)).isoformat(),
            "created_at": created}))
    return events


def receipt(receipt_id: int, deal_id: int, amount: str, days_ago: int) -> tuple[str, dict]:
    return ("payment_received", {"receipt_id": receipt_id, "deal_id": deal_id,
                                 "amount": amount, "currency": "RUB",
                                 "received_on": (TODAY - timedelta(days=days_ago)).isoformat()})


def send(stack: Any, events: list[tuple[str, str, dict]]) -> None:
    """Publish and wait until the inbox has taken at least that many more events (the
    count is of the whole inbox, so it is taken before publishing)."""
    before = stack.counts()[2]
    for service, event_type, data in events:
        stack.publish(service, stack.envelope(event_type, data))
    stack.wait_applied(before + len(events))


def test_rfm_scores_segments_history_and_the_batch_for_the_client_list(stack):
    # five clients, one deal each; receipts chosen so that every rank is its own quintile
    plan = {  # client: (receipts, amount each, days since the last)
        601: (6, "150000.00", 1), 602: (4, "75000.00", 30), 603: (2, "25000.00", 90),
        604: (5, "80000.00", 200), 605: (1, "1000.00", 500)}
    events: list[tuple[str, str, dict]] = []
    rid = 1
    for client, (count, amount, last) in plan.items():
        events += [("deals", t, d) for t, d in deal(client, client)]
        for i in range(count):
            events.append(("payments", *receipt(rid, client, amount, last + i * 3)))
            rid += 1
    send(stack, events)

    result = stack.rpc.call("analytics", "recompute_rfm")
    assert result["clients"] == 5 and result["moved"] == 5
    segments = stack.rpc.call("analytics", "client_segments", [601, 602, 603, 604, 605, 999])
    assert "999" not in segments  # never paid: no segment
    # by hand (as in the unit test): R 5..1 in the order of the last payment; F and M by
    # the number and sum of receipts: 601 6/900000, 604 5/400000, 602 4/300000,
    # 603 2/50000, 605 1/1000
    assert {c: (s["r"], s["f"], s["m"], s["segment"]) for c, s in segments.items()} == {
        "601": (5, 5, 5, "champions"), "602": (4, 3, 3, "loyal"),
        "603": (3, 2, 2, "hibernating"), "604": (2, 4, 4, "at_risk"),
        "605": (1, 1, 1, "lost")}
    assert segments["601"]["amount"] == "900000.00" and segments["601"]["segment_name"] == \
        "чемпионы"
    assert stack.rpc.call("analytics", "segment_clients", "at_risk") == [604]

    # a new large payment from the lost client moves it; the history keeps both moves
    send(stack, [("payments", *receipt(100, 605, "5000000.00", 0))])
    again = stack.rpc.call("analytics", "recompute_rfm")
    assert again["clients"] == 5 and again["moved"] >= 1
    loyalty = stack.rpc.call("analytics", "client_loyalty", 605)
    assert loyalty["score"]["segment"] != "lost"
    assert [(h["previous"], h["segment"]) for h in loyalty["history"]] == [
        ("lost", loyalty["score"]["segment"]), (None, "lost")]
    # a recomputation with nothing new moves nobody and adds no history
    with stack.session_of("analytics") as s:
        before = s.scalar(select(func.count()).select_from(RfmHistory))
    assert stack.rpc.call("analytics", "recompute_rfm")["moved"] == 0
    with stack.session_of("analytics") as s:
        assert s.scalar(select(func.count()).select_from(RfmHistory)) == before

    rules = stack.rpc.call("analytics", "rfm_rules")
    assert [r["name"] for r in rules["rules"]] == [
        "чемпионы", "лояльные", "перспективные", "под угрозой", "спящие", "потерянные"]
    with pytest.raises(ValidationError) as bad:
        stack.rpc.call("analytics", "segment_clients", "vip")
    assert bad.value.field == "segment"


def test_the_nightly_job_is_claimed_once(start_service, rpc, amqp_uri, session_of):
    from services.analytics.models import ScheduledJob
    from services.analytics.service import AnalyticsService
    from services.deals.service import DealsService
    start_service(DealsService)
    start_service(AnalyticsService, RFM_TICK_SECONDS=0.1)
    start_service(AnalyticsService, RFM_TICK_SECONDS=0.1)  # a second replica
    with session_of("analytics") as s:
        wait_until(lambda: s.get(ScheduledJob, "rfm") is not None, timeout=20,
                   message="the job's row")
        s.execute(ScheduledJob.__table__.update().values(due_at=NOW - timedelta(minutes=1)))
        s.commit()

    def ran() -> bool:
        with session_of("analytics") as s2:
            job = s2.get(ScheduledJob, "rfm")
            return job is not None and job.last_run_at is not None
    wait_until(ran, timeout=20, message="the nightly run")
    with session_of("analytics") as s:
        job = s.get(ScheduledJob, "rfm")
        assert job.due_at > NOW  # moved on to the next night: the other replica skips it
        assert job.last_result == "0 clients"


def test_bcg_over_product_lines_and_over_deal_types(stack):
    won = [("deals", t, d) for t, d in
           deal(701, 601, "won", amount="600.00", closed_days_ago=5)
           + deal(702, 602, "won", amount="400.00", closed_days_ago=10)
           + deal(703, 603, "won", amount="500.00", closed_days_ago=100)]  # previous period
    send(stack, won)
    by_type = stack.rpc.call("analytics", "bcg_matrix", {},
                             viewer={"user_id": 1, "roles": ["head"]})
    assert by_type["by"] == "deal_type"
    assert [(r["key"], r["sales"]) for r in by_type["rows"]] == [("Без типа", "1000.00")]

    lines = [("deals", "calculation_saved", {"deal_id": 701, "version": 1, "total": "600.00",
                                             "lines": [
        {"catalogue_id": 1, "product_line": "Станки", "kind": "goods", "amount": "500.00"},
        {"catalogue_id": None, "product_line": None, "kind": "service", "amount": "100.00"}]}),
             ("deals", "calculation_saved", {"deal_id": 703, "version": 1, "total": "500.00",
                                             "lines": [
        {"catalogue_id": 1, "product_line": "Станки", "kind": "goods", "amount": "500.00"}]}),
             # an older calculation of deal 701 arriving late changes nothing
             ("deals", "calculation_saved", {"deal_id": 701, "version": 0, "total": "1.00",
                                             "lines": [{"product_line": "Старое",
                                                        "amount": "1.00"}]})]
    send(stack, lines)
    matrix = stack.rpc.call("analytics", "bcg_matrix", {},
                            viewer={"user_id": 1, "roles": ["admin"]})
    assert matrix["by"] == "product_line"
    # by hand: this period Станки 500, without a line 100 (701) + 400 (702, no lines);
    # previous period Станки 500: growth 0 % -> low; shares 50/50 of 1000 -> both average
    assert {r["key"]: (r["sales"], r["share"], r["growth"], r["quadrant"])
            for r in matrix["rows"]} == {
        "Станки": ("500.00", "50.0", "0.0", "cash_cow"),
        "Без товарной линии": ("500.00", "50.0", None, "star")}
    with pytest.raises(Forbidden):
        stack.rpc.call("analytics", "bcg_matrix", {}, viewer={"user_id": 7,
                                                            "roles": ["manager"]})
    with pytest.raises(ValidationError) as bad:
        stack.rpc.call("analytics", "bcg_matrix", {"growth": "много"},
                       viewer={"user_id": 1, "roles": ["head"]})
    assert bad.value.field == "growth"


def test_the_database_scores_as_the_rules_do_on_many_clients_with_ties(stack):
    import random

    from services.analytics import loyalty, loyalty_store
    rng = random.Random(7)
    events: list[tuple[str, str, dict]] = []
    rid = 1000
    for client in range(800, 860):
        events += [("deals", t, d) for t, d in deal(client, client)]
        for _ in range(rng.randint(1, 4)):
            # few distinct amounts and days: many ties
            events.append(("payments", *receipt(rid, client, rng.choice(["100.00", "500.00"]),
                                                rng.choice([0, 10, 100]))))
            rid += 1
    send(stack, events)
    stack.rpc.call("analytics", "recompute_rfm")
    got = stack.rpc.call("analytics", "client_segments", list(range(800, 860)))
    with stack.session_of("analytics") as s:
        expected = loyalty.score_all(loyalty_store.paid(s), TODAY)
    assert {str(e.client_id): (e.r, e.f, e.m, e.segment) for e in expected} == {
        c: (v["r"], v["f"], v["m"], v["segment"]) for c, v in got.items()}


def test_the_client_group_reaches_the_deals_and_slices_rfm(stack):
    from services.analytics.models import DealState
    send(stack, [("deals", t, d) for t, d in deal(901, 951)]
         + [("payments", *receipt(5001, 901, "100.00", 3))])
    send(stack, [("clients", "client_group_changed",
                  {"client_id": 951, "client_group_id": 77, "previous_group_id": None,
                   "version": 2})])
    # an older event arriving late changes nothing; a later deal of the client takes it
    send(stack, [("clients", "client_group_changed",
                  {"client_id": 951, "client_group_id": 5, "version": 1})]
         + [("deals", t, d) for t, d in deal(902, 951)])

    def groups() -> dict[int, int | None]:
        with stack.session_of("analytics") as s:
            return {d.deal_id: d.client_group_id for d in s.scalars(
                select(DealState).where(DealState.client_id == 951))}

    # several handlers take each event (the funnel's in batches): wait for the deal itself
    wait_until(lambda: 902 in groups(), timeout=20, message="deal 902 in the read model")
    assert groups() == {901: 77, 902: 77}
    stack.rpc.call("analytics", "recompute_rfm")
    segment = stack.rpc.call("analytics", "client_segments", [951])["951"]["segment"]
    assert stack.rpc.call("analytics", "segment_clients", segment, 100, 77) == [951]
    assert stack.rpc.call("analytics", "segment_clients", segment, 100, 78) == []
    # the administrator's table counts the segment's clients, of one group when asked
    counts = stack.rpc.call("analytics", "rfm_rules", 77)["segments"]
    assert counts == {code: (1 if code == segment else 0) for code in counts}
    assert set(stack.rpc.call("analytics", "rfm_rules", 78)["segments"].values()) == {0}
    assert stack.rpc.call("analytics", "rfm_rules")["segments"][segment] >= 1


def test_each_recomputation_publishes_the_segment_moves(stack, spy):
    from services.analytics.models import outbox
    events = spy("analytics", "client_segments_changed")
    plan = {611: ("900000.00", 1), 612: ("5000.00", 40), 613: ("100.00", 300)}
    sent: list[tuple[str, str, dict]] = []
    for rid, (client, (amount, days)) in enumerate(plan.items(), start=7001):
        sent += [("deals", t, d) for t, d in deal(client, client)]
        sent.append(("payments", *receipt(rid, client, amount, days)))
    send(stack, sent)

    first = stack.rpc.call("analytics", "recompute_rfm")
    published = events.wait_for("client_segments_changed", 1, timeout=20)
    assert "changes" not in first  # the moves go out as events, not in the reply
    data = published[0]["data"]
    assert data["computed_at"] == first["computed_at"]
    segments = stack.rpc.call("analytics", "client_segments", list(plan))
    assert data["changes"] == [{"client_id": c, "segment": segments[str(c)]["segment"],
                                "previous": None} for c in sorted(plan)]

    # nobody moved: nothing published (the outbox holds only the first event)
    assert stack.rpc.call("analytics", "recompute_rfm")["moved"] == 0
    # a big new payment moves the smallest client up and the other two down (by hand:
    # R/F/M of 611 4/1/4 -> 2/1/2, 612 2/1/2 -> 1/1/1, 613 1/1/1 -> 4/4/4)
    send(stack, [("payments", *receipt(7100, 613, "9000000.00", 0))])
    stack.rpc.call("analytics", "recompute_rfm")
    second = events.wait_for("client_segments_changed", 2, timeout=20)[1]["data"]
    after = stack.rpc.call("analytics", "client_segments", list(plan))
    assert [(c["client_id"], c["previous"], c["segment"]) for c in second["changes"]] == [
        (611, "promising", "hibernating"), (612, "hibernating", "lost"),
        (613, "lost", "champions")]
    assert {c: s["segment"] for c, s in after.items()} == {
        "611": "hibernating", "612": "lost", "613": "champions"}
    with stack.session_of("analytics") as s:
        assert s.scalar(select(func.count()).select_from(outbox).where(
            outbox.c.type == "client_segments_changed")) == 2
