"""A burst of status changes (duplicates and late, older versions among them) reaches the
win-rate handler many to a transaction: the counts must be those of learning each move
alone in delivery order, and each event must count once."""
from __future__ import annotations

from typing import Any

from kombu import Connection, Producer
from sqlalchemy import func, select

from services.analytics import winrate
from services.analytics.models import WinCount, WinOutcome, inbox
from services.kit.envelope import Envelope
from services.kit.messaging import event_exchange
from tests.service.analytics.test_win_probability import counts, moved
from tests.support.infra import wait_until

DEALS = range(300, 330)


def burst() -> tuple[list[dict[str, Any]], dict[int, str | None]]:
    """The envelopes in publishing order and each deal's outcome once all are learnt
    (None: open again), worked out by hand from the rules: the newest version wins."""
    def env(data: dict[str, Any]) -> dict[str, Any]:
        return Envelope.new("deal_status_changed", data).to_dict()

    sent: list[dict[str, Any]] = []
    duplicates: list[dict[str, Any]] = []
    final: dict[int, str | None] = {}
    for deal_id in DEALS:
        i, manager = deal_id - 300, 7 if deal_id % 2 else 8
        outcome = "won" if i % 3 else "lost"
        closed = env(moved(deal_id, manager, "new", outcome, outcome, 2))
        reopened = env(moved(deal_id, manager, outcome, "new", "open", 3))
        if i % 5 == 0:
            # the reopening overtakes the move it undoes: the older move changes nothing
            sent += [reopened, closed]
            final[deal_id] = None
        elif i % 5 == 1:
            sent += [closed, reopened, env(moved(deal_id, manager, "new", "lost", "lost", 4))]
            final[deal_id] = "lost"
        else:
            sent.append(closed)
            final[deal_id] = outcome
        if i % 4 == 0:
            duplicates.append(closed)
    # the copies both right behind their first delivery (the same batch) and at the end
    return sent[:10] + duplicates[:3] + sent[10:] + duplicates, final


def publish_all(uri: str, bodies: list[dict[str, Any]]) -> None:
    """One connection for the whole burst, so that the handler gets it in batches."""
    with Connection(uri) as conn:
        producer = Producer(conn.default_channel, exchange=event_exchange("deals"))
        for body in bodies:
            producer.publish(body, routing_key=body["type"], serializer="json",
                             declare=[event_exchange("deals")])


def outcomes(stack: Any) -> dict[int, tuple[int, bool | None, str | None]]:
    with stack.session_of("analytics") as s:
        return {r.deal_id: (r.version, r.won, r.lost_at) for r in s.scalars(
            select(WinOutcome).where(WinOutcome.deal_id.in_(list(DEALS))))}


def learn_one_at_a_time(stack: Any, bodies: list[dict[str, Any]]) -> None:
    """The same deliveries learnt afresh one per transaction, each event once (what the
    inbox lets through), in delivery order."""
    statuses = stack.rpc.call("deals", "list_statuses")
    kinds = {str(st["code"]): str(st["kind"]) for st in statuses}
    order = winrate.open_order(statuses)
    seen: set[str] = set()
    with stack.session_of("analytics") as s:
        s.execute(WinCount.__table__.delete())
        s.execute(WinOutcome.__table__.delete())
        s.commit()
        for body in bodies:
            if body["event_id"] in seen:
                continue
            seen.add(body["event_id"])
            winrate.learn(s, body["data"], kinds, order, body["occurred_at"])
            s.commit()


def learnt_once(stack: Any) -> int:
    with stack.session_of("analytics") as s:
        return int(s.scalar(select(func.count()).select_from(inbox).where(
            inbox.c.handler == "analytics.learn_outcome")))


def test_a_burst_with_duplicates_counts_as_one_move_at_a_time(stack):
    bodies, final = burst()
    distinct = len({b["event_id"] for b in bodies})
    assert distinct < len(bodies)  # the burst does hold copies
    publish_all(stack.uri, bodies)
    wait_until(lambda: learnt_once(stack) == distinct, timeout=30,
               message="every distinct move claimed once by the win-rate handler")
    with stack.session_of("analytics") as s:
        rows = {r.deal_id: r for r in s.scalars(
            select(WinOutcome).where(WinOutcome.deal_id.in_(list(DEALS))))}
    assert {d: (None if r.won is None else ("won" if r.won else "lost"))
            for d, r in rows.items()} == final
    assert {d: r.version for d, r in rows.items()} == {
        d: 3 if (d - 300) % 5 == 0 else 4 if (d - 300) % 5 == 1 else 2 for d in DEALS}
    won = [d for d, o in final.items() if o == "won"]
    lost = [d for d, o in final.items() if o == "lost"]
    live = counts(stack)
    assert live[(0, "new", "", "")] == (len(won), len(lost))
    for manager in (7, 8):
        assert live[(0, "new", "manager", str(manager))] == (
            sum(1 for d in won if (7 if d % 2 else 8) == manager),
            sum(1 for d in lost if (7 if d % 2 else 8) == manager))
    # the recount from the outcomes alone gives the very counts kept live
    assert stack.rpc.call("analytics", "rebuild_probability") == {
        "outcomes": len(won) + len(lost)}
    assert counts(stack) == live
    # and learning the same deliveries one move per transaction ends the same way
    batched = outcomes(stack)
    learn_one_at_a_time(stack, bodies)
    assert outcomes(stack) == batched
    assert counts(stack) == live
