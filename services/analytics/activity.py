"""What managers do, as events tell it (deals' reminders, telephony's calls), and the rows
manager performance is computed from (the maths is services/analytics/performance.py)."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import Session

from services.analytics import performance
from services.analytics.models import CallState, DealState, Receipt, TaskState, Transition
from services.kit import clock


def _at(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def task_created(session: Session, data: Mapping[str, Any]) -> None:
    session.execute(insert(TaskState).values(
        reminder_id=int(data["reminder_id"]), deal_id=data.get("deal_id"),
        assignee_id=data.get("assignee_id"), due_at=_at(data.get("due_at")))
        .on_conflict_do_nothing())


def task_completed(session: Session, data: Mapping[str, Any]) -> None:
    """Completed (also when it arrives before its creation: the row is made then)."""
    done = _at(data.get("completed_at")) or clock.now()
    upsert = insert(TaskState).values(
        reminder_id=int(data["reminder_id"]), deal_id=data.get("deal_id"),
        assignee_id=data.get("assignee_id"), completed_at=done)
    session.execute(upsert.on_conflict_do_update(index_elements=["reminder_id"],
                                                 set_={"completed_at": done}))


def call_seen(session: Session, call: Mapping[str, Any]) -> None:
    """A finished call or a later change of it (a revision not above the last: nothing)."""
    started = _at(call.get("started_at"))
    if call.get("id") is None or started is None:
        return
    deals = call.get("deal_ids") or []
    values = {"call_id": int(call["id"]), "revision": int(call.get("revision") or 0),
              "direction": str(call.get("direction") or "inbound")[:20],
              "outcome": (str(call["outcome"])[:20] if call.get("outcome") else None),
              "started_at": started, "deal_id": int(deals[0]) if deals else None}
    upsert = insert(CallState).values(**values)
    session.execute(upsert.on_conflict_do_update(
        index_elements=["call_id"], set_={k: upsert.excluded[k] for k in values
                                          if k != "call_id"},
        where=CallState.revision < upsert.excluded.revision))


def figures(session: Session, kinds: Mapping[str, str], start: datetime, end: datetime,
            now: datetime, managers: set[int] | None,
            client_group: int | None = None) -> list[dict[str, Any]]:
    """The rows of the deals that count for the period (created or closed in it, or open
    now), their tasks, calls, receipts and first moves, through ``performance``; with
    ``client_group``, only the deals of that group's clients and their tasks."""
    # also a deal closed before the period that was paid or called in it: its money and
    # calls count for the period too
    touched = (select(Receipt.deal_id).where(Receipt.received_on >= start.date().isoformat(),
                                             Receipt.received_on < end.date().isoformat())
               .union(select(CallState.deal_id).where(CallState.started_at >= start,
                                                      CallState.started_at < end,
                                                      CallState.deal_id.is_not(None))))
    where = [DealState.created_at.is_not(None),
             or_(DealState.created_at.between(start, end),
                 DealState.closed_at.between(start, end),
                 DealState.status.in_([c for c, k in kinds.items() if k == "open"]),
                 DealState.deal_id.in_(touched))]
    if managers is not None:
        where.append(DealState.manager_id.in_(managers))
    if client_group is not None:
        where.append(DealState.client_group_id == client_group)
    # Core rows, not ORM ones: the ORM's row processing doubled the read of a big page
    db = session.connection()
    deals = [performance.Deal(d, m, c or now, closed,
                              kinds.get(st or "") if kinds.get(st or "") in ("won", "lost")
                              else None, amount)
             for d, m, c, closed, st, amount in db.execute(
                 select(DealState.deal_id, DealState.manager_id, DealState.created_at,
                        DealState.closed_at, DealState.status, DealState.amount)
                 .where(*where)).tuples()]
    known = {d.deal_id for d in deals}
    # the chosen deals' ids as one array parameter for the rest: as a subquery the scan of
    # the deals was done again by each of the four reads
    chosen = any_(bindparam("chosen", sorted(known), type_=ARRAY(BigInteger)))
    task_rows = db.execute(
        select(TaskState.deal_id, TaskState.assignee_id, TaskState.due_at,
               TaskState.completed_at)
        .where(or_(TaskState.deal_id == chosen, TaskState.completed_at.is_(None)))).tuples()
    tasks = [performance.Task(*t) for t in task_rows]
    if client_group is not None:  # a task without a deal belongs to no client's group
        tasks = [t for t in tasks if t.deal_id in known]
    elif managers is not None:
        tasks = [t for t in tasks if t.assignee_id in managers or t.deal_id in known]
    calls = [performance.Call(*c) for c in db.execute(
        select(CallState.deal_id, CallState.direction, CallState.outcome,
               CallState.started_at).where(CallState.deal_id == chosen)).tuples()]
    receipts = [(d, Decimal(a), _day(on)) for d, a, on in db.execute(
        select(Receipt.deal_id, Receipt.amount, Receipt.received_on).where(
            Receipt.deal_id == chosen, Receipt.received_on >= start.date().isoformat()))
        if on]
    moves = dict(db.execute(
        select(Transition.deal_id, func.min(Transition.at))
        .where(Transition.deal_id == chosen, Transition.seq > 1)
        .group_by(Transition.deal_id)).tuples().all())
    return performance.performance(deals, tasks, calls, receipts, moves, start, end, now)


def _day(value: str | None) -> date:
    return date.fromisoformat(str(value)[:10])
