"""The analytics read model's SQL: what the event handlers and the rebuild write, and what
a funnel request reads.  The maths is in ``domain``.

Writes.  Out-of-order and replayed deliveries are absorbed here: a transition is keyed by
``(deal_id, seq)`` (seq = the deal's version after the move), so a second copy inserts
nothing; the current state of a deal moves only forward in version; events at or below
``rebuilt_version`` are already in the replayed history and are skipped.

Reads.  One funnel request: the cohort's groups and medians from the deals' summary rows,
the snapshot from the trigger-kept counts, the deals of a layer."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, func, literal, or_, select, text, true, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.analytics import domain
from services.analytics.models import DealCount, DealState, Receipt, Transition, deal_count_moves
from services.kit import clock
from services.kit.envelope import Envelope

CLOSED_KINDS = ("won", "lost")
# what the rebuild takes from a page when it is at least as new as the applied events
CURRENT_FIELDS = ("name", "client_id", "client_name", "manager_id", "type_id", "status", "stage",
                  "amount", "currency", "closed_at", "entered_at", "loss_reason")


def _at(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _money(value: Any) -> Decimal:
    return Decimal(str(value if value not in (None, "") else "0")).quantize(Decimal("0.01"))


# A deal's summary row (``DealState.path`` and the rest) rewritten from its transitions:
# computed from the transitions themselves, not patched event by event, so duplicates,
# shuffles and replays give the same summary as the transitions do.  Runs after the
# transitions changed, under the deal row's lock that the same transaction took.
# ``SUMMED``: the CTEs ``moves`` (path, last_at, last_loss_reason) and ``spent`` (codes,
# seconds) per deal of the moves in ``source`` (the rebuild sums up its staged moves with it)
SUMMED = """
WITH m AS (
  SELECT deal_id, seq, to_status, at, loss_reason,
         lead(at) OVER w AS next_at, lead(seq) OVER w IS NULL AS is_last
  FROM {source} WHERE {where}
  WINDOW w AS (PARTITION BY deal_id ORDER BY seq)),
visits AS (
  SELECT deal_id, to_status, min(seq) AS first_seq,
         sum(COALESCE(greatest(0, extract(epoch FROM next_at - at)), 0)) AS seconds
  FROM m GROUP BY deal_id, to_status),
moves AS (
  SELECT deal_id, array_agg(to_status ORDER BY seq) AS path,
         max(at) FILTER (WHERE is_last) AS last_at,
         max(loss_reason) FILTER (WHERE is_last) AS last_loss_reason
  FROM m GROUP BY deal_id),
spent AS (
  SELECT deal_id, array_agg(to_status ORDER BY first_seq) AS codes,
         array_agg(CAST(seconds AS float8) ORDER BY first_seq) AS seconds
  FROM visits GROUP BY deal_id)
"""
_SUMMARIZE = SUMMED + """
UPDATE deals AS d SET path = moves.path, last_at = moves.last_at,
       last_loss_reason = moves.last_loss_reason, seconds_codes = spent.codes,
       seconds_values = spent.seconds
FROM moves JOIN spent USING (deal_id)
WHERE d.deal_id = moves.deal_id
"""
SUMMARIZE_ALL = _SUMMARIZE.format(source="transitions", where="true")
_SUMMARIZE_ONE = text(_SUMMARIZE.format(source="transitions", where="deal_id = :deal_id"))
_SUMMARIZE_MANY = text(_SUMMARIZE.format(source="transitions",
                                         where="deal_id = ANY(CAST(:ids AS bigint[]))"))


# ``session.info`` key: while it holds a set, summaries are rewritten once per transaction
# (``summarize_deferred``) instead of once per event
DEFERRED = "analytics.summarize_deferred"


def summarize(session: Session, deal_id: int) -> None:
    """Rewrite one deal's summary from its transitions (later in this transaction when
    the summaries are deferred)."""
    deferred = session.info.get(DEFERRED)
    if deferred is not None:
        deferred.add(deal_id)
        return
    session.execute(_SUMMARIZE_ONE, {"deal_id": deal_id})


def summarize_many(session: Session, deal_ids: list[int]) -> None:
    """Rewrite the summaries of ``deal_ids`` (in id order) from their transitions."""
    session.execute(_SUMMARIZE_MANY, {"ids": sorted(deal_ids)})


@contextmanager
def summaries_deferred(session: Session) -> Iterator[None]:
    """Within: every deal whose transitions change is summed up once, at the end (one
    statement for a whole batch of events)."""
    deferred: set[int] = set()
    session.info[DEFERRED] = deferred
    try:
        yield
        session.info.pop(DEFERRED, None)
        if deferred:
            summarize_many(session, list(deferred))
    finally:
        session.info.pop(DEFERRED, None)


def _deal_of(event: Envelope) -> tuple[int, int]:
    try:
        return int(event.data.get("deal_id") or 0), int(event.data.get("version") or 0)
    except (TypeError, ValueError):
        return 0, 0


def _in_deal_order(events: list[Envelope]) -> list[Envelope]:
    """One order of the deals' rows for every batch, so that two batches applied at once
    lock them in the same order and never deadlock."""
    return sorted(events, key=_deal_of)


def deals_created(session: Session, events: list[Envelope]) -> None:
    with summaries_deferred(session):
        for event in _in_deal_order(events):
            deal_created(session, event.data, event.occurred_at)


def deals_updated(session: Session, events: list[Envelope]) -> None:
    for event in _in_deal_order(events):
        deal_updated(session, event.data)


def _state(session: Session, deal_id: int) -> DealState:
    """The deal's row, locked (made empty at version 0 if no event of it came yet)."""
    session.execute(insert(DealState).values(deal_id=deal_id, version=0, rebuilt_version=0)
                    .on_conflict_do_nothing())
    return session.scalars(select(DealState).where(DealState.deal_id == deal_id)
                           .with_for_update()).one()


def _add_transition(session: Session, deal_id: int, seq: int, row: dict[str, Any]) -> None:
    session.execute(insert(Transition).values(
        deal_id=deal_id, seq=seq, from_status=row.get("from_status"),
        to_status=row["to_status"], from_stage=row.get("from_stage"),
        to_stage=row.get("to_stage"), at=_at(row["at"]), manager_id=row.get("manager_id"),
        type_id=row.get("type_id"), client_id=row.get("client_id"),
        amount=_money(row.get("amount")), loss_reason_id=row.get("loss_reason_id"),
        loss_reason=row.get("loss_reason")).on_conflict_do_nothing())


def deal_created(session: Session, data: dict[str, Any], occurred_at: str) -> None:
    deal_id, version = int(data["deal_id"]), int(data.get("version") or 1)
    state = _state(session, deal_id)
    if version <= state.rebuilt_version:
        return
    at = _at(data.get("created_at") or occurred_at)
    _add_transition(session, deal_id, version, {
        "to_status": data["status"], "to_stage": data.get("stage"), "at": at,
        "manager_id": data.get("manager_id"), "type_id": data.get("type_id"),
        "client_id": data.get("client_id"), "amount": data.get("amount")})
    state.created_at = at
    state.name = data.get("name") or state.name
    state.client_name = data.get("client_name") or state.client_name
    if version > state.version or state.status is None:
        state.version = max(state.version, version)
        state.status, state.stage, state.entered_at = data["status"], data.get("stage"), at
        state.manager_id, state.type_id = data.get("manager_id"), data.get("type_id")
        state.client_id, state.amount = data.get("client_id"), _money(data.get("amount"))
        state.currency = data.get("currency") or state.currency
    session.flush()
    summarize(session, deal_id)


def _unnest(columns: tuple[tuple[str, str], ...]) -> str:
    """``unnest`` of one array parameter per column, named like the columns."""
    arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns)
    return f"unnest({arrays}) AS v({', '.join(name for name, _ in columns)})"


# Status changes of a whole batch in two statements (the live projection's hot path): the
# deals' rows are upserted once each (the batch's newest move of the deal), their current
# fields moving only when that version is newer than both the applied and the replayed
# ones; then every move is added unless the replayed history already holds it
# (``rebuilt_version`` is not changed by the upsert) or it is there already (a copy).
_NEWER = "(excluded.version > d.version AND excluded.version > d.rebuilt_version)"
_MOVED = ("version", "status", "stage", "entered_at", "manager_id", "type_id", "client_id",
          "amount", "closed_at", "loss_reason")
_STATE_COLUMNS = (("deal_id", "bigint"), ("version", "integer"), ("name", "text"),
                  ("client_id", "bigint"), ("client_name", "text"), ("manager_id", "integer"),
                  ("type_id", "integer"), ("status", "text"), ("stage", "text"),
                  ("amount", "numeric"), ("created_at", "timestamptz"),
                  ("closed_at", "timestamptz"), ("entered_at", "timestamptz"),
                  ("loss_reason", "text"))
_MOVE_COLUMNS = (("deal_id", "bigint"), ("seq", "integer"), ("from_status", "text"),
                 ("to_status", "text"), ("from_stage", "text"), ("to_stage", "text"),
                 ("at", "timestamptz"), ("manager_id", "integer"), ("type_id", "integer"),
                 ("client_id", "bigint"), ("amount", "numeric"), ("loss_reason_id", "integer"),
                 ("loss_reason", "text"))
_STATES_MOVED = text("""
INSERT INTO deals AS d (deal_id, version, rebuilt_version, name, client_id, client_name,
                        manager_id, type_id, status, stage, amount, currency, created_at,
                        closed_at, entered_at, loss_reason, updated_at)
SELECT deal_id, version, 0, name, client_id, client_name, manager_id, type_id, status, stage,
       amount, 'RUB', created_at, closed_at, entered_at, loss_reason, now()
FROM {rows} ORDER BY deal_id
ON CONFLICT (deal_id) DO UPDATE SET
    {moved},
    name = CASE WHEN {newer} AND excluded.name <> '' THEN excluded.name ELSE d.name END,
    client_name = CASE WHEN {newer} AND excluded.client_name <> ''
                       THEN excluded.client_name ELSE d.client_name END,
    created_at = COALESCE(d.created_at, CASE WHEN {newer} THEN excluded.created_at END),
    updated_at = CASE WHEN {newer} THEN now() ELSE d.updated_at END
""".format(rows=_unnest(_STATE_COLUMNS), newer=_NEWER, moved=",\n    ".join(
    f"{c} = CASE WHEN {_NEWER} THEN excluded.{c} ELSE d.{c} END" for c in _MOVED)))
_MOVES_ADDED = text(f"""
INSERT INTO transitions ({", ".join(name for name, _ in _MOVE_COLUMNS)})
SELECT {", ".join(f"v.{name}" for name, _ in _MOVE_COLUMNS)}
FROM {_unnest(_MOVE_COLUMNS)} JOIN deals d ON d.deal_id = v.deal_id
WHERE d.rebuilt_version < v.seq ORDER BY v.deal_id, v.seq
ON CONFLICT DO NOTHING
""")


def status_changed(session: Session, data: dict[str, Any], occurred_at: str) -> None:
    if data.get("version"):
        _moved_at_versions(session, [(data, occurred_at)])
        return
    deal_id = int(data["deal_id"])
    state = _state(session, deal_id)
    version = state.version + 1
    if version <= state.rebuilt_version:
        return
    at = _at(data.get("changed_at") or occurred_at)
    _add_transition(session, deal_id, version, {**data, "at": at})
    summarize(session, deal_id)
    state.version = version
    state.status, state.stage, state.entered_at = data["to_status"], data.get("to_stage"), at
    state.manager_id, state.type_id = data.get("manager_id"), data.get("type_id")
    state.client_id, state.amount = data.get("client_id"), _money(data.get("amount"))
    state.name = data.get("name") or state.name
    state.client_name = data.get("client_name") or state.client_name
    if data.get("created_at") and state.created_at is None:
        state.created_at = _at(data["created_at"])
    kind = data.get("to_status_kind")
    state.closed_at = at if kind in CLOSED_KINDS else None
    state.loss_reason = data.get("loss_reason") if kind == "lost" else None


def statuses_changed(session: Session, events: list[Envelope]) -> None:
    """A batch of status changes: those with a version (every event deals publishes now)
    in a few statements for the whole batch, the rest one by one."""
    versioned = [(e.data, e.occurred_at) for e in events if e.data.get("version")]
    with summaries_deferred(session):
        if versioned:
            _moved_at_versions(session, versioned)
        for event in _in_deal_order([e for e in events if not e.data.get("version")]):
            status_changed(session, event.data, event.occurred_at)


def _moved_at_versions(session: Session, events: list[tuple[dict[str, Any], str]]) -> None:
    moves: list[dict[str, Any]] = []
    for data, occurred_at in events:
        at = _at(data.get("changed_at") or occurred_at)
        kind = data.get("to_status_kind")
        moves.append({
            "deal_id": int(data["deal_id"]), "seq": int(data["version"]),
            "from_status": data.get("from_status"), "to_status": data["to_status"],
            "from_stage": data.get("from_stage"), "to_stage": data.get("to_stage"), "at": at,
            "manager_id": data.get("manager_id"), "type_id": data.get("type_id"),
            "client_id": data.get("client_id"), "amount": _money(data.get("amount")),
            "loss_reason_id": data.get("loss_reason_id"), "loss_reason": data.get("loss_reason"),
            # the deal's row as this move leaves it
            "name": data.get("name") or "", "client_name": data.get("client_name") or "",
            "created_at": _at(data["created_at"]) if data.get("created_at") else None,
            "closed_at": at if kind in CLOSED_KINDS else None,
            "state_loss_reason": data.get("loss_reason") if kind == "lost" else None})
    moves.sort(key=lambda m: (m["deal_id"], m["seq"]))
    # one row per deal: its newest move of the batch, with the names the latest move that
    # had one gave (as applying the moves one after the other would leave them)
    states: dict[int, dict[str, Any]] = {}
    for move in moves:
        before = states.get(move["deal_id"])
        states[move["deal_id"]] = {
            **move, "version": move["seq"], "status": move["to_status"],
            "stage": move["to_stage"], "entered_at": move["at"],
            "loss_reason": move["state_loss_reason"],
            "name": move["name"] or (before or {}).get("name", ""),
            "client_name": move["client_name"] or (before or {}).get("client_name", ""),
            "created_at": (before or {}).get("created_at") or move["created_at"]}
    session.execute(_STATES_MOVED, {name: [s[name] for s in states.values()]
                                    for name, _ in _STATE_COLUMNS})
    session.execute(_MOVES_ADDED, {name: [m[name] for m in moves] for name, _ in _MOVE_COLUMNS})
    for deal_id in states:
        summarize(session, deal_id)


def deal_updated(session: Session, data: dict[str, Any]) -> None:
    deal_id = int(data["deal_id"])
    state = _state(session, deal_id)
    version = int(data.get("version") or state.version + 1)
    if version <= max(state.version, state.rebuilt_version):
        return
    state.version = version
    changes = data.get("changes") or {}
    for name in ("manager_id", "type_id", "client_id"):
        if name in changes:
            setattr(state, name, changes[name]["to"])
    if "client_name" in changes:
        state.client_name = changes["client_name"]["to"] or ""
    if "stage" in changes:
        state.stage = changes["stage"]["to"]
    if "amount" in changes:
        state.amount = _money(changes["amount"]["to"])
    if data.get("name"):
        state.name = data["name"]


def payments_received(session: Session, receipts: list[dict[str, Any]]) -> None:
    """The receipts of payment_received events, in one statement (a receipt seen before
    stays as it was)."""
    if not receipts:
        return
    session.execute(insert(Receipt).values([{
        "receipt_id": int(data["receipt_id"]), "deal_id": int(data["deal_id"]),
        "amount": _money(data.get("amount")), "currency": data.get("currency") or "RUB",
        "received_on": data.get("received_on")} for data in receipts]).on_conflict_do_nothing())


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value: Any) -> str:
    """One value in COPY's text format (NULL as \\N, arrays as literals)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (list, tuple)):
        items = ("NULL" if v is None else
                 '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
                 for v in value)
        return ("{" + ",".join(items) + "}").translate(_COPY_ESCAPES)
    return str(value)


# the counts' moves folded into the counts: moves appended meanwhile stay for the next time
# (a DELETE sees only the rows of its snapshot); keys in order, so two replicas folding at
# once lock the counts in one order
_COMPACT_COUNTS = text("""
WITH gone AS (DELETE FROM deal_count_moves RETURNING *)
INSERT INTO deal_counts AS c (status, stage, manager_key, type_key, deals, amount)
SELECT status, stage, manager_key, type_key, sum(deals), sum(amount) FROM gone
GROUP BY status, stage, manager_key, type_key ORDER BY status, stage, manager_key, type_key
ON CONFLICT (status, stage, manager_key, type_key)
DO UPDATE SET deals = c.deals + excluded.deals, amount = c.amount + excluded.amount
""")


def compact_counts(session: Session) -> None:
    """Fold what changed in the deals now in each status into ``deal_counts``."""
    session.execute(_COMPACT_COUNTS)
    session.execute(text("DELETE FROM deal_counts WHERE deals = 0 AND amount = 0"))


def settle(engine: Any) -> None:
    """After a rebuild: its count moves (one a deal) folded into the counts and their dead
    rows vacuumed away, and the deals vacuumed and analysed.  Every funnel request scans
    the count moves (the snapshot) and the cohort's summary rows; until (auto)vacuum comes
    by, the first read a table of a million dead rows (25 ms a request at 1,000,000
    deals) and the second checked each row's visibility on the heap."""
    with engine.connect() as conn:
        with conn.begin():
            compact_counts(Session(bind=conn))
        vacuum = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("deal_count_moves", "deal_counts", "deals"):
            vacuum.execute(text(f"VACUUM (ANALYZE) {table}"))


# ---------------------------------------------------------------- funnel reads

MEDIAN_WORK_MEM = "64MB"
# any select, whatever its columns (bare: SQLAlchemy's Select is variadic in them)
Query = TypeVar("Query", bound=Select)  # type: ignore[type-arg]
Found = TypeVar("Found")
Other = TypeVar("Other")


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


def _without_jit(session: Session) -> None:
    """A funnel slice's aggregates cost just about the planner's ``jit_above_cost`` at
    1,000,000 deals: compiling them would cost more than it saves (a 106-day slice's
    medians: 190 ms of CPU with JIT against 170 without), and a little more data would
    cross the line on one request and not the next."""
    session.execute(text("SET LOCAL jit = off"))


def groups(session: Session, filters: domain.Filters, tz: ZoneInfo,
           managers: set[int] | None) -> list[domain.Group]:
    """The cohort's deals by path and last loss reason (status mode): one aggregate over
    the deals' summary rows."""
    _without_jit(session)
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
    # finished visits plus the current one until ``now`` when it is the deal's last status;
    # the sum only on that row: ``seconds + CASE ... ELSE 0 END`` cast a numeric 0 to
    # float8 (through its text) on every other row, for the same values
    current = func.greatest(0, func.extract("epoch", literal(now) - DealState.last_at))
    seconds = case(
        (spent.c.code == DealState.path[func.cardinality(DealState.path)],
         spent.c.seconds + current), else_=spent.c.seconds)
    # One filtered aggregate per status rather than GROUP BY code: grouping sorts every
    # (deal, status) row by the code's collation before each group sorts its seconds again,
    # which cost a third more at 1,000,000 deals; here each status sorts only its own seconds.
    medians = [func.percentile_cont(0.5).within_group(seconds).filter(spent.c.code == code)
               for code in codes]
    stmt = cohort(select(*medians).select_from(DealState).join(spent, true())
                  .where(spent.c.code.in_(codes)), filters, tz, managers)
    # the sorts behind the medians hold a row per deal and status: in memory, not on disk
    session.execute(text(f"SET LOCAL work_mem = '{MEDIAN_WORK_MEM}'"))
    _without_jit(session)
    row = session.execute(stmt).one()
    return {code: float(value) for code, value in zip(codes, row, strict=True)
            if value is not None}


def figures(session: Session, filters: domain.Filters, tz: ZoneInfo,
            managers: set[int] | None, layers: list[domain.Layer], kinds: dict[str, str],
            now: datetime, beside: Callable[[], Session] | None = None
            ) -> tuple[list[domain.LayerFigures], int]:
    """The cohort funnel of a slice (status mode) and its size, from the summaries.

    ``beside``: a second session on the same database, where the medians (the biggest
    statement: over 1,000,000 deals, three quarters of a 90-day slice) run while the
    groups run here, on another core.  Each statement reads its own snapshot under READ
    COMMITTED either way, so running them side by side changes no figure's meaning."""
    codes = domain.open_layer_codes(layers, kinds)
    if beside is None:
        found = groups(session, filters, tz, managers)
        medians = median_seconds(session, filters, tz, managers, codes, now)
    else:
        found, medians = _side_by_side(
            lambda: groups(session, filters, tz, managers),
            beside, lambda other: median_seconds(other, filters, tz, managers, codes, now))
    return (domain.funnel_of_groups(found, medians, layers, kinds),
            sum(g.deals for g in found))


def _side_by_side(here: Callable[[], Found], beside: Callable[[], Session],
                  there: Callable[[Session], Other]) -> tuple[Found, Other]:
    """``here()`` in this thread while ``there`` runs on a session of its own in another
    (a green thread in a service: psycopg waits cooperatively there)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with beside() as other:
                outcome["value"] = there(other)
                other.rollback()
        except BaseException as error:  # raised in the caller's thread below
            outcome["error"] = error

    worker = threading.Thread(target=run, name="funnel-medians", daemon=True)
    worker.start()
    try:
        found = here()
    finally:
        worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return found, outcome["value"]


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
