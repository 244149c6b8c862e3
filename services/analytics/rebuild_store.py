"""The rebuild's writes: a page of ``deals.history_columns`` replayed in SQL.

The page's columns are COPYed as they came into temporary tables (the deals, and their
history with an ordinal ``pos``), and window functions do what ``domain.replay`` does in
Python, stated so:

- a deal's values at creation: each field's first change's ``old_value``, else its current
  value;
- a **run** is a maximal sequence of consecutive status/stage/loss reason changes with one
  ``changed_at``; its **group** starts at its first status or stage change (a loss reason
  before it is dropped) and takes the rest of the run; a group is a move unless it has no
  status change and a ``type_id`` change has the same moment (a new process's first
  stage: only the stage is taken);
- a move's from-status/stage and manager/type/client/amount are the last values set at a
  ``pos`` before its group: a running ``max`` of ``lpad(pos) || value`` over the rows
  before (one sort for every field; ``V`` before a value, ``N`` for a NULL one).

A run that holds one field twice splits into several groups greedily in ``domain.replay``;
such deals (rare) are replayed by ``domain.replay`` into the same staging table, so the
result is exactly the Python one.  ``replay_page`` is that Python path for a whole page:
the reference the tests compare this with.

Then, for both: each deal's transitions up to its version are replaced by the staged ones,
and the deal's row (with its summary, computed in the same statement) is inserted or
updated, its current fields only when the page is at least as new as the events applied
(a second run writes the same rows; events arriving meanwhile are kept)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, repeat
from typing import Any, cast

from sqlalchemy import Table, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.analytics import domain, models
from services.analytics.store import (
    CURRENT_FIELDS,
    _at,
    _copy_value,
    _money,
    summarize_many,
)
from services.kit.db import driver_connection

# the page's deals as copied (``history_columns``' names; ``id`` becomes ``deal_id``)
PAGE_DEALS = (("deal_id", "id", "bigint"), ("version", "version", "integer"),
              ("name", "name", "text"), ("client_id", "client_id", "bigint"),
              ("client_name", "client_name", "text"), ("manager_id", "manager_id", "integer"),
              ("type_id", "type_id", "integer"), ("status", "status", "text"),
              ("stage", "stage", "text"), ("amount", "amount", "text"),
              ("currency", "currency", "text"), ("created_at", "created_at", "timestamptz"),
              ("closed_at", "closed_at", "timestamptz"),
              ("loss_reason", "loss_reason", "text"))
HISTORY = ("deal_id", "pos", "field", "old_value", "new_value", "changed_at")
MOVES = ("deal_id", "seq", "from_status", "to_status", "from_stage", "to_stage", "at",
         "manager_id", "type_id", "client_id", "amount", "loss_reason_id", "loss_reason")
# the fields a move carries the value of, in the order of the encoded "before" values
TRACKED = ("status", "stage", "manager_id", "type_id", "client_id", "amount")
_RUNS = "('status', 'stage', 'loss_reason')"
WORK_MEM = "64MB"

_STAGING = (
    "CREATE TEMPORARY TABLE rebuild_page_deals ({}) ON COMMIT DROP".format(
        ", ".join(f"{name} {kind}" for name, _, kind in PAGE_DEALS)),
    "CREATE TEMPORARY TABLE rebuild_page_history (deal_id bigint, pos integer, field text,"
    " old_value text, new_value text, changed_at timestamptz) ON COMMIT DROP",
    "CREATE TEMPORARY TABLE rebuild_moves (LIKE transitions INCLUDING DEFAULTS) ON COMMIT DROP",
    # the deals whose history is status changes only (``_plain_split``): each one's
    # status at creation, and each of its changes with its number and its status before
    "CREATE TEMPORARY TABLE rebuild_plain_deals (deal_id bigint, status text) ON COMMIT DROP",
    "CREATE TEMPORARY TABLE rebuild_plain_steps (deal_id bigint, seq integer,"
    " from_status text, to_status text, at timestamptz) ON COMMIT DROP",
)


def _encoded(value: str) -> str:
    """A value behind its row's ordinal, so that ``max`` picks the latest one."""
    return f"lpad(CAST(pos AS text), 10, '0') || COALESCE('V' || {value}, 'N')"


def _decoded(encoded: str, otherwise: str) -> str:
    """The value of ``_encoded``; ``otherwise`` when there was none."""
    return (f"CASE WHEN {encoded} IS NULL THEN {otherwise}"
            f" WHEN substr({encoded}, 11, 1) = 'V' THEN substr({encoded}, 12) END")


def _typed(name: str, value: str) -> str:
    """A field's text as its column (as ``domain.replay`` reads it)."""
    if name in ("manager_id", "type_id"):
        return f"CASE WHEN {value} IN ('', 'None') THEN NULL ELSE CAST({value} AS integer) END"
    if name == "client_id":
        return f"CASE WHEN {value} IN ('', 'None') THEN NULL ELSE CAST({value} AS bigint) END"
    if name == "amount":
        return f"CAST(COALESCE(NULLIF({value}, ''), '0') AS numeric(18, 2))"
    return value


# each run of a deal's status/stage/loss reason changes: its group's start, what it sets,
# the values before it, and whether it holds a field twice (``odd``: replayed in Python).
# Most runs are one status or stage change: such a run is its group as it stands, and
# only the runs of several rows are aggregated (a loss reason alone is no move, so its run
# is left out)
_GROUPS = """
h AS (
  SELECT deal_id, pos, field, new_value, changed_at, field IN {runs} AS runs,
         lag(field IN {runs}) OVER w AS after_runs, lag(changed_at) OVER w AS after_at,
         {befores}
  FROM rebuild_page_history
  WINDOW w AS (PARTITION BY deal_id ORDER BY pos),
         b AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)),
r AS (
  SELECT *, sum(CAST(NOT continues AS integer)) OVER v AS run,
         COALESCE(lead(continues) OVER v, false) AS continued
  FROM (SELECT *, runs AND COALESCE(after_runs AND after_at = changed_at, false) AS continues
        FROM h) AS rows
  WINDOW v AS (PARTITION BY deal_id ORDER BY pos)),
run_groups AS (
  SELECT deal_id, run, changed_at AS at, pos AS start, false AS odd,
       field = 'status' AS has_status,
       CASE WHEN field = 'status' THEN new_value END AS new_status,
       field = 'stage' AS has_stage, CASE WHEN field = 'stage' THEN new_value END AS new_stage,
       CAST(NULL AS integer) AS reason_pos, CAST(NULL AS text) AS reason,
       {befores_as_they_are}
  FROM r WHERE runs AND NOT continues AND NOT continued AND field IN ('status', 'stage')
  UNION ALL
  SELECT deal_id, run, min(changed_at) AS at,
       min(pos) FILTER (WHERE field IN ('status', 'stage')) AS start,
       count(*) <> count(DISTINCT field) AS odd,
       bool_or(field = 'status') AS has_status,
       max(new_value) FILTER (WHERE field = 'status') AS new_status,
       bool_or(field = 'stage') AS has_stage,
       max(new_value) FILTER (WHERE field = 'stage') AS new_stage,
       max(pos) FILTER (WHERE field = 'loss_reason') AS reason_pos,
       max(new_value) FILTER (WHERE field = 'loss_reason') AS reason,
       {firsts}
  FROM r WHERE runs AND (continues OR continued) GROUP BY deal_id, run)
""".format(runs=_RUNS,
           befores=",\n         ".join(
               f"max(CASE WHEN field = '{f}' THEN {_encoded('new_value')} END) OVER b"
               f" AS before_{f}" for f in TRACKED),
           befores_as_they_are=", ".join(f"before_{f}" for f in TRACKED),
           # a loss reason changes none of them: the run's first row has its group's
           firsts=",\n       ".join(f"max(before_{f}) FILTER (WHERE NOT continues) AS before_{f}"
                                    for f in TRACKED))

# the moves of every deal but the odd ones (the creation, then one per group that is a
# move) staged, and the odd deals' ids returned: one statement (the groups in memory, not
# written to a table of their own and read back)
_MOVES = text("""
WITH {groups},
odd AS (SELECT DISTINCT deal_id FROM run_groups WHERE odd),
firsts AS (
  SELECT deal_id, {firsts} FROM rebuild_page_history GROUP BY deal_id),
initial AS (
  SELECT d.deal_id, d.created_at, {initial}
  FROM rebuild_page_deals d LEFT JOIN firsts f USING (deal_id)
  WHERE d.deal_id NOT IN (SELECT deal_id FROM odd)
    AND d.deal_id NOT IN (SELECT deal_id FROM rebuild_plain_deals)),
steps AS (
  SELECT g.deal_id, g.start, g.at, g.has_status, g.new_status, g.has_stage, g.new_stage,
         CASE WHEN g.reason_pos > g.start THEN g.reason END AS loss_reason, {before}
  FROM run_groups g JOIN initial i USING (deal_id)
  WHERE g.start IS NOT NULL AND (g.has_status OR NOT EXISTS (
      SELECT 1 FROM rebuild_page_history t
      WHERE t.deal_id = g.deal_id AND t.field = 'type_id' AND t.changed_at = g.at))),
staged AS (
INSERT INTO rebuild_moves ({moves})
SELECT deal_id, 1, NULL, status, NULL, stage, created_at, {values}, CAST(NULL AS integer),
       CAST(NULL AS text) FROM initial
UNION ALL
SELECT deal_id, 1 + row_number() OVER (PARTITION BY deal_id ORDER BY start), status,
       CASE WHEN has_status THEN new_status ELSE status END, stage,
       CASE WHEN has_stage THEN new_stage ELSE stage END, at, {values}, NULL, loss_reason
FROM steps)
SELECT deal_id FROM odd ORDER BY deal_id
""".format(groups=_GROUPS,
           firsts=", ".join(f"min({_encoded('old_value')}) FILTER (WHERE field = '{f}')"
                            f" AS first_{f}" for f in TRACKED),
           initial=", ".join(f"{_decoded(f'f.first_{f}', f'CAST(d.{f} AS text)')} AS {f}"
                             for f in TRACKED),
           before=", ".join(f"{_decoded(f'g.before_{f}', f'i.{f}')} AS {f}" for f in TRACKED),
           moves=", ".join(MOVES),
           values=", ".join(_typed(f, f) for f in TRACKED[2:])))

# the moves of the plain deals (``_plain_split``), what ``_MOVES`` makes of them: the
# creation with the status before the first change and the deal's stage, manager, type,
# client and amount (none of them ever changed), then one move per change, numbered in
# order, from the status before it (no run, no loss reason, no stage of its own)
_PLAIN_MOVES = text("""
INSERT INTO rebuild_moves ({moves})
SELECT d.deal_id, 1, NULL, p.status, NULL, d.stage, d.created_at, {values},
       CAST(NULL AS integer), CAST(NULL AS text)
FROM rebuild_plain_deals p JOIN rebuild_page_deals d USING (deal_id)
UNION ALL
SELECT d.deal_id, t.seq, t.from_status, t.to_status, d.stage, d.stage, t.at, {values},
       NULL, NULL
FROM rebuild_plain_steps t JOIN rebuild_page_deals d USING (deal_id)
""".format(moves=", ".join(MOVES),
           values=", ".join(f"d.{f}" for f in TRACKED[2:5]) + ", "
           + _typed("amount", "d.amount")))


# each statement on the read model's tables is bounded by the page's id range (``:first``
# .. ``:last``): an index range scan, where a join to the staging table alone (no
# statistics) was planned as a scan of every transition, a page's time growing with the
# table
_REPLACED = text(
    "DELETE FROM transitions t USING rebuild_page_deals v"
    " WHERE t.deal_id BETWEEN :first AND :last AND t.deal_id = v.deal_id"
    " AND t.seq <= v.version")
_INSERTED = (f"INSERT INTO transitions ({', '.join(MOVES)})"
             f" SELECT {', '.join(MOVES)} FROM rebuild_moves ORDER BY deal_id, seq")
_ADDED = text(_INSERTED + " ON CONFLICT DO NOTHING")
# no row of the page's id range yet (the first rebuild): the rows are inserted plainly
_ANY_ROW = text("SELECT EXISTS (SELECT 1 FROM deals WHERE deal_id BETWEEN :first AND :last)")
_STATE = ("deal_id", "version", "rebuilt_version", "name", "client_id", "client_name",
          "manager_id", "type_id", "status", "stage", "amount", "currency", "created_at",
          "closed_at", "entered_at", "loss_reason", *domain.Summed._fields)
# the CTEs ``moves`` and ``spent`` of ``store.SUMMED`` (what the live projection sums up
# with) for the staged moves, in one pass: the moves in order, each with the seconds of its
# visit, are aggregated per deal as they come, so a deal that visits no status twice (most)
# has its codes and seconds at once; only the others group their visits by status (in the
# move's order of first visit, the seconds summed as numeric and then cast, as ``SUMMED``
# does). ``SUMMED`` grouped every deal's visits and sorted each aggregate's input: three
# times the time; a window's growing arrays, one per move, cost a fifth more than this.
# The aggregates read the ordered subquery directly and the staging tables are temporary,
# which PostgreSQL never scans in parallel (``_staged`` turns parallel plans off as well),
# so each array is in move order.  The tests compare both on the same moves.
_SUMMED_STAGED = """
WITH m AS (
  SELECT deal_id, seq, to_status, at, loss_reason,
         COALESCE(greatest(0, extract(epoch FROM lead(at) OVER w - at)), 0) AS seconds,
         lead(seq) OVER w IS NULL AS is_last
  FROM rebuild_moves WINDOW w AS (PARTITION BY deal_id ORDER BY seq)),
summed AS (
  SELECT deal_id, array_agg(to_status) AS path, array_agg(seconds) AS seconds,
         max(at) FILTER (WHERE is_last) AS last_at,
         max(loss_reason) FILTER (WHERE is_last) AS last_loss_reason,
         count(DISTINCT to_status) < count(*) AS revisits
  FROM (SELECT * FROM m ORDER BY deal_id, seq) AS ordered GROUP BY deal_id),
moves AS (SELECT deal_id, path, last_at, last_loss_reason FROM summed),
spent AS (
  SELECT s.deal_id,
         CASE WHEN s.revisits THEN v.codes ELSE s.path END AS codes,
         CASE WHEN s.revisits THEN v.seconds ELSE CAST(s.seconds AS float8[]) END AS seconds
  FROM summed s
  -- both arrays from one grouping of the visits; "WHERE s.revisits" is a one-time filter
  -- of the subquery, so a deal that visits no status twice groups nothing
  CROSS JOIN LATERAL (
    SELECT array_agg(code ORDER BY first) AS codes,
           array_agg(CAST(total AS float8) ORDER BY first) AS seconds
    FROM (SELECT code, min(o) AS first, sum(spent) AS total
          FROM unnest(s.path, s.seconds) WITH ORDINALITY AS u(code, spent, o)
          WHERE s.revisits GROUP BY code) AS visits) AS v)
"""
# the deals' rows with their summaries summed up from the staged moves: inserted, or
# updated where they are (their current fields only when the page is at least as new as
# what the events told)
_DEALS_INSERTED = _SUMMED_STAGED + """
INSERT INTO deals AS d ({columns})
SELECT p.deal_id, p.version, p.version, COALESCE(p.name, ''), p.client_id,
       COALESCE(p.client_name, ''), p.manager_id, p.type_id, p.status, p.stage,
       {amount}, COALESCE(p.currency, 'RUB'), p.created_at, p.closed_at, moves.last_at,
       CASE WHEN k.kind = 'lost' THEN p.loss_reason END,
       moves.path, spent.codes, spent.seconds, moves.last_at, moves.last_loss_reason
FROM rebuild_page_deals p JOIN moves USING (deal_id) JOIN spent USING (deal_id)
LEFT JOIN unnest(CAST(:codes AS text[]), CAST(:kinds AS text[])) AS k(code, kind)
       ON k.code = p.status
ORDER BY p.deal_id
""".format(columns=", ".join(_STATE), amount=_typed("amount", "p.amount"))
_UPSERTED = text(_DEALS_INSERTED + """
ON CONFLICT (deal_id) DO UPDATE SET
    {current},
    version = greatest(d.version, excluded.version),
    rebuilt_version = greatest(d.rebuilt_version, excluded.rebuilt_version),
    created_at = excluded.created_at, {summary}
""".format(current=",\n    ".join(f"{c} = CASE WHEN d.version <= excluded.version"
                                  f" THEN excluded.{c} ELSE d.{c} END"
                                  for c in CURRENT_FIELDS),
           summary=", ".join(f"{c} = excluded.{c}" for c in domain.Summed._fields)))
# deals with live moves above their replayed version: summed up from all their transitions
_LIVE = text("SELECT DISTINCT t.deal_id FROM transitions t JOIN rebuild_page_deals v"
             " ON t.deal_id = v.deal_id AND t.seq > v.version"
             " WHERE t.deal_id BETWEEN :first AND :last ORDER BY t.deal_id")
_DROPPED = text("DROP TABLE IF EXISTS rebuild_page_deals, rebuild_page_history, rebuild_moves,"
                " rebuild_plain_deals, rebuild_plain_steps")


# the read model's indexes a rebuild from empty builds at its end (every one of the two
# tables it fills but their primary keys, which the writes themselves look up)
DEFERRED_INDEXES = tuple(index for table in (models.DealState.__table__,
                                             models.Transition.__table__)
                         for index in sorted(cast(Table, table).indexes,
                                             key=lambda i: str(i.name)))
_INDEX_MEMORY = "256MB"


def defer_indexes(factory: sessionmaker[Session]) -> None:
    """``DEFERRED_INDEXES`` dropped, for a bulk load (``restore_indexes`` after it)."""
    with factory() as session, session.begin():
        for index in DEFERRED_INDEXES:
            session.execute(text(f"DROP INDEX IF EXISTS {index.name}"))


def restore_indexes(factory: sessionmaker[Session]) -> None:
    """Every one of ``DEFERRED_INDEXES`` that is missing built again (none missing:
    nothing is done)."""
    with factory() as session, session.begin():
        connection = session.connection()
        connection.execute(text(f"SET LOCAL maintenance_work_mem = '{_INDEX_MEMORY}'"))
        for index in DEFERRED_INDEXES:
            index.create(connection, checkfirst=True)


def rebuild_page(session: Session, page: Mapping[str, Any], kinds: Mapping[str, str]) -> None:
    """One ``history_columns`` answer (``page``) replayed in SQL and written; ``kinds``:
    each status code's kind."""
    deals, history = page["deals"], page["history"]
    if not deals["id"]:
        return
    connection = _staged(session)
    _copy(session, "rebuild_page_deals", [name for name, _, _ in PAGE_DEALS],
          [deals[source] for _, source, _ in PAGE_DEALS])
    plain, steps, others = _plain_split(deals, history)
    _copy(session, "rebuild_plain_deals", ("deal_id", "status"), plain)
    _copy(session, "rebuild_plain_steps", ("deal_id", "seq", "from_status", "to_status", "at"),
          steps)
    connection.execute(_PLAIN_MOVES)
    odd: Sequence[Any] = ()
    if others[0]:
        _copy(session, "rebuild_page_history", HISTORY, others)
        odd = connection.execute(_MOVES).scalars().all()
    if odd:
        wanted = set(odd)
        _copy_rows(session, "rebuild_moves", MOVES, replayed_moves(
            d for d in domain.page_deals(page) if int(d["id"]) in wanted))
    _write(session, deals["id"], kinds)
    connection.execute(_DROPPED)


def _plain_split(deals: Mapping[str, Sequence[Any]], history: Mapping[str, Sequence[Any]]
                 ) -> tuple[list[list[Any]], list[list[Any]], list[list[Any]]]:
    """A page's deals whose history is status changes only, no two in a row at one moment
    (most deals), apart from the others: the plain ones' columns for
    ``rebuild_plain_deals`` and ``rebuild_plain_steps`` (what ``_GROUPS`` would make of
    them, worked out here in one pass), the others' history for ``rebuild_page_history``
    (each change keeps its ordinal in the page).  Moments are compared as the text
    ``history_columns`` sends (one format, UTC): two changes at one moment form a run."""
    ids, counts = deals["id"], deals["history_count"]
    fields, old, new, at = (history["field"], history["old_value"], history["new_value"],
                            history["changed_at"])
    owners = list(chain.from_iterable(map(repeat, ids, counts)))
    others = {o for o, field in zip(owners, fields, strict=True) if field != "status"}
    others.update(o for o, before, moment, previous
                  in zip(owners[1:], owners, at[1:], at, strict=False)
                  if o == before and moment == previous)
    plain: list[list[Any]] = [[], []]
    steps: list[list[Any]] = [[], [], [], [], []]
    kept: list[int] = []
    start = 0
    for deal_id, count, status in zip(ids, counts, deals["status"], strict=True):
        end = start + count
        if deal_id in others:
            kept.extend(range(start, end))
        else:
            plain[0].append(deal_id)
            plain[1].append(old[start] if count else status)
            if count:
                steps[0].extend(repeat(deal_id, count))
                steps[1].extend(range(2, count + 2))
                steps[2].append(old[start])
                steps[2].extend(new[start:end - 1])
                steps[3].extend(new[start:end])
                steps[4].extend(at[start:end])
        start = end
    rest: list[list[Any]] = [[owners[i] for i in kept], kept]
    rest.extend([column[i] for i in kept] for column in (fields, old, new, at))
    return plain, steps, rest


def replay_page(session: Session, deals: Sequence[Mapping[str, Any]],
                kinds: Mapping[str, str]) -> None:
    """The same page replayed by ``domain.replay`` in Python (one dict per deal with its
    ``history``): the reference ``rebuild_page`` must equal."""
    if not deals:
        return
    connection = _staged(session)
    _copy(session, "rebuild_page_deals", [name for name, _, _ in PAGE_DEALS],
          [[d.get(source) for d in deals] for _, source, _ in PAGE_DEALS])
    _copy_rows(session, "rebuild_moves", MOVES, replayed_moves(deals))
    _write(session, [d["id"] for d in deals], kinds)
    connection.execute(_DROPPED)


def _staged(session: Session) -> Any:
    """The staging tables, in a transaction set for them."""
    connection = session.connection()
    # moments without a zone are UTC, as ``store._at`` reads them; no JIT (the planner,
    # without statistics on the fresh staging tables, priced the page's statements high
    # enough to compile them, and compiling took seconds where running takes tens of ms);
    # the page's sorts and aggregates in memory; no parallel plan (``_SUMMED_STAGED``)
    for setting in ("TimeZone = 'UTC'", "jit = off", f"work_mem = '{WORK_MEM}'",
                    "max_parallel_workers_per_gather = 0"):
        connection.execute(text(f"SET LOCAL {setting}"))
    for statement in _STAGING:
        connection.execute(text(statement))
    return connection


def replayed_moves(deals: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """The transitions' rows (``MOVES``) of ``deals`` replayed by ``domain.replay``."""
    rows = []
    for deal in deals:
        for seq, move in enumerate(domain.replay(deal), start=1):
            rows.append((int(deal["id"]), seq, move["from_status"], move["to_status"],
                         move["from_stage"], move["to_stage"], _at(move["at"]),
                         move["manager_id"], move["type_id"], move["client_id"],
                         _money(move["amount"]), None, move["loss_reason"]))
    return rows


def _write(session: Session, ids: Sequence[Any], kinds: Mapping[str, str]) -> None:
    connection = session.connection()
    named = {"codes": list(kinds), "kinds": list(kinds.values())}
    bounds = {"first": min(int(i) for i in ids), "last": max(int(i) for i in ids)}
    if not connection.execute(_ANY_ROW, bounds).scalar() and _inserted(session, named):
        return
    connection.execute(_REPLACED, bounds)
    connection.execute(_ADDED)
    connection.execute(_UPSERTED, named)
    live = connection.execute(_LIVE, bounds).scalars().all()
    if live:
        summarize_many(session, list(live))


def _inserted(session: Session, named: Mapping[str, Any]) -> bool:
    """The page's rows inserted plainly (no conflict to look for: cheaper per row); False,
    with nothing written, when a live event wrote one of its deals meanwhile."""
    try:
        with session.begin_nested():
            connection = session.connection()
            connection.execute(text(_INSERTED))
            connection.execute(text(_DEALS_INSERTED), named)
    except IntegrityError:
        return False
    return True


def _copy(session: Session, table: str, names: Sequence[str],
          columns: Sequence[Iterable[Any]]) -> None:
    """Columns COPYed into ``table`` (COPY's text format written here, a column at a time:
    psycopg's ``write_row`` adapts value by value and cost more than the SQL around it)."""
    cells = [_copy_column(column) for column in columns]
    _copy_text(session, table, names, "".join(
        "\t".join(row) + "\n" for row in zip(*cells, strict=True)))


_SPECIAL = ("\\", "\t", "\n", "\r")


def _copy_column(column: Iterable[Any]) -> list[str]:
    """One column's values in COPY's text format: a page's columns are text or numbers
    (moments as ISO text), so a column without a character to escape needs only its
    NULLs written; any other goes value by value through ``_copy_value``."""
    values = list(column)
    known = [v for v in values if v is not None]
    if all(type(v) is str for v in known):
        joined = "".join(known)
        if not any(c in joined for c in _SPECIAL):
            return ["\\N" if v is None else v for v in values]
    elif all(type(v) is int for v in known):
        return ["\\N" if v is None else str(v) for v in values]
    return [_copy_value(v) for v in values]


def _copy_rows(session: Session, table: str, names: Sequence[str],
               rows: Iterable[Sequence[Any]]) -> None:
    _copy_text(session, table, names, "".join(
        "\t".join(map(_copy_value, row)) + "\n" for row in rows))


def _copy_text(session: Session, table: str, names: Sequence[str], block: str) -> None:
    with driver_connection(session).cursor() as cursor, \
            cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
        copy.write(block.encode())
