"""Reads of the read model for one funnel request: the cohort's paths, the snapshot, the
deals of a layer.  The maths is in ``domain``."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, func, literal, or_, select, text, true, union_all
from sqlalchemy.orm import Session

from services.analytics import domain
from services.analytics.models import DealCount, DealState, Receipt, Transition, deal_count_moves
from services.kit import clock

MEDIAN_WORK_MEM = "64MB"
# any select, whatever its columns (bare: SQLAlchemy's Select is variadic in them)
Query = TypeVar("Query", bound=Select)  # type: ignore[type-arg]


def _bounds(filters: domain.Filters, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(filters.start, time.min, tz)
    end = datetime.combine(filters.end + timedelta(days=1), time.min, tz)
    return start, end


def _sliced(stmt: Query, filters: domain.Filters, managers: set[int] | None) -> Query:
    if filters.type_id is not None:
        stmt = stmt.where(DealState.type_id == filters.type_id)
    if filters.client_id is not None:
        stmt = stmt.where(DealState.client_id == filters.client_id)
    if filters.client_group_id is not None:
        stmt = stmt.where(DealState.client_group_id == filters.client_group_id)
    if filters.manager_id is not None:
        stmt = stmt.where(DealState.manager_id == filters.manager_id)
    if managers is not None:
        stmt = stmt.where(DealState.manager_id.in_(sorted(managers) or [-1]))
    return stmt


def cohort(stmt: Query, filters: domain.Filters, tz: ZoneInfo,
           managers: set[int] | None) -> Query:
    """Deals that entered the funnel (were created) or were closed in the period."""
    start, end = _bounds(filters, tz)
    column = DealState.created_at if filters.basis == "created" else DealState.closed_at
    return _sliced(stmt.where(column >= start, column < end), filters, managers)


def paths(session: Session, filters: domain.Filters, tz: ZoneInfo, managers: set[int] | None,
          by_stage: bool) -> Iterator[tuple[DealState | Any, domain.Path]]:
    """Each cohort deal with its moves (to its stage instead of its status by type)."""
    deals = {d.deal_id: d for d in session.execute(cohort(
        select(DealState.deal_id, DealState.name, DealState.client_name, DealState.client_id,
               DealState.manager_id, DealState.amount, DealState.status, DealState.stage,
               DealState.entered_at), filters, tz, managers))}
    if not deals:
        return
    target = Transition.to_stage if by_stage else Transition.to_status
    # the same cohort as a join (an id list would outgrow the protocol's 65,535 parameters)
    rows = session.execute(cohort(
        select(Transition.deal_id, Transition.seq, target.label("to"), Transition.at,
               Transition.loss_reason, Transition.to_status)
        .join(DealState, DealState.deal_id == Transition.deal_id), filters, tz, managers)
        .order_by(Transition.deal_id, Transition.seq))
    current: int | None = None
    moves: list[domain.Move] = []
    for row in rows:
        if row.deal_id != current:
            if current is not None:
                yield deals[current], domain.Path(current, tuple(moves), deals[current].amount)
            current, moves = row.deal_id, []
        # a stage-mode move into a lost status still ends the path as lost
        to = row.to if row.to is not None else row.to_status
        moves.append(domain.Move(row.seq, to, row.at, row.loss_reason))
    if current is not None:
        yield deals[current], domain.Path(current, tuple(moves), deals[current].amount)


def groups(session: Session, filters: domain.Filters, tz: ZoneInfo,
           managers: set[int] | None) -> list[domain.Group]:
    """The cohort's deals by path and last loss reason (status mode): one aggregate over
    the deals' summary rows."""
    stmt = cohort(select(DealState.path, DealState.last_loss_reason, func.count(),
                         func.coalesce(func.sum(DealState.amount), 0))
                  .where(DealState.path.is_not(None))
                  .group_by(DealState.path, DealState.last_loss_reason), filters, tz, managers)
    return [domain.Group(tuple(path or ()), reason, int(n), Decimal(amount))
            for path, reason, n, amount in session.execute(stmt)]


def median_seconds(session: Session, filters: domain.Filters, tz: ZoneInfo,
                   managers: set[int] | None, codes: list[str], now: datetime
                   ) -> dict[str, float]:
    """The median seconds spent in each of ``codes`` (open statuses) over the cohort's
    deals that were in it."""
    if not codes:
        return {}
    spent = func.unnest(DealState.seconds_codes, DealState.seconds_values).table_valued(
        "code", "seconds").render_derived(name="spent")
    # finished visits plus the current one until ``now`` when it is the deal's last status
    current = func.greatest(0, func.extract("epoch", literal(now) - DealState.last_at))
    seconds = spent.c.seconds + case(
        (spent.c.code == DealState.path[func.cardinality(DealState.path)], current), else_=0)
    stmt = cohort(select(spent.c.code, func.percentile_cont(0.5).within_group(seconds))
                  .select_from(DealState).join(spent, true())
                  .where(spent.c.code.in_(codes)).group_by(spent.c.code),
                  filters, tz, managers)
    # the sort behind the medians holds a row per deal and status: in memory, not on disk
    session.execute(text(f"SET LOCAL work_mem = '{MEDIAN_WORK_MEM}'"))
    return {code: float(value) for code, value in session.execute(stmt)}


def figures(session: Session, filters: domain.Filters, tz: ZoneInfo,
            managers: set[int] | None, layers: list[domain.Layer], kinds: dict[str, str],
            now: datetime) -> tuple[list[domain.LayerFigures], int]:
    """The cohort funnel of a slice (status mode) and its size, from the summaries."""
    found = groups(session, filters, tz, managers)
    medians = median_seconds(session, filters, tz, managers,
                             domain.open_layer_codes(layers, kinds), now)
    return (domain.funnel_of_groups(found, medians, layers, kinds),
            sum(g.deals for g in found))


def summarised(session: Session, filters: domain.Filters, tz: ZoneInfo,
               managers: set[int] | None, *, reaching: list[str] | None = None,
               paths: list[tuple[str, ...]] | None = None, reason: str | None = None,
               limit: int) -> list[Any]:
    """The biggest cohort deals (ties by id) whose path holds one of ``reaching`` or is one
    of ``paths`` (with the last loss reason ``reason``; "—": none), with their summary."""
    stmt = cohort(select(DealState).where(DealState.path.is_not(None)), filters, tz,
                  managers)
    if reaching is not None:
        stmt = stmt.where(DealState.path.overlap(reaching))
    if paths is not None:
        if not paths:
            return []
        stmt = stmt.where(DealState.path.in_([list(p) for p in paths]))
    if reason is not None:
        # as ``domain.belongs``: no reason is told as "—"
        stmt = stmt.where(or_(DealState.last_loss_reason.is_(None),
                              DealState.last_loss_reason.in_(("", "—"))) if reason == "—"
                          else DealState.last_loss_reason == reason)
    return list(session.scalars(stmt.order_by(DealState.amount.desc(), DealState.deal_id)
                                .limit(limit)))


def now_in_layers(session: Session, filters: domain.Filters, managers: set[int] | None,
                  by_stage: bool) -> list[tuple[str | None, int, Decimal]]:
    """How many deals and how much sit in each status (stage) now: from the counts the
    triggers keep, or from the deals themselves for one client or group (not keys of the
    counts)."""
    if filters.client_id is None and filters.client_group_id is None:
        return _counted(session, filters, managers, by_stage)
    column = DealState.stage if by_stage else DealState.status
    stmt = _sliced(select(column, func.count(), func.coalesce(func.sum(DealState.amount), 0))
                   .group_by(column), filters, managers)
    return [(code, int(count), Decimal(amount)) for code, count, amount in session.execute(stmt)]


def _counted(session: Session, filters: domain.Filters, managers: set[int] | None,
             by_stage: bool) -> list[tuple[str | None, int, Decimal]]:
    parts = [select(DealCount.status, DealCount.stage, DealCount.manager_key,
                    DealCount.type_key, DealCount.deals, DealCount.amount),
             select(deal_count_moves)]
    every = union_all(*parts).subquery()
    code = every.c.stage if by_stage else every.c.status
    stmt = select(code, func.sum(every.c.deals), func.coalesce(func.sum(every.c.amount), 0))
    if filters.type_id is not None:
        stmt = stmt.where(every.c.type_key == filters.type_id)
    if filters.manager_id is not None:
        stmt = stmt.where(every.c.manager_key == filters.manager_id)
    if managers is not None:
        stmt = stmt.where(every.c.manager_key.in_(sorted(managers) or [-2]))
    stmt = stmt.group_by(code).having(func.sum(every.c.deals) != 0)
    return [(value or None, int(count), Decimal(amount))
            for value, count, amount in session.execute(stmt)]


def revenue(session: Session, filters: domain.Filters, tz: ZoneInfo,
            managers: set[int] | None) -> Decimal:
    deals = cohort(select(DealState.deal_id), filters, tz, managers).subquery()
    total = session.scalar(select(func.coalesce(func.sum(Receipt.amount), 0))
                           .where(Receipt.deal_id.in_(select(deals.c.deal_id))))
    return Decimal(total or 0).quantize(Decimal("0.01"))


def current_in(session: Session, filters: domain.Filters, managers: set[int] | None,
               layer: str, by_stage: bool, limit: int) -> list[Any]:
    column = DealState.stage if by_stage else DealState.status
    stmt = _sliced(select(DealState).where(column == layer), filters, managers)
    return list(session.scalars(stmt.order_by(DealState.amount.desc()).limit(limit)))


def days_since(moment: datetime | None, now: datetime) -> Decimal | None:
    if moment is None:
        return None
    return (Decimal((now - moment).total_seconds()) / 86400).quantize(Decimal("0.1"))


def utcnow() -> datetime:
    return clock.now()
