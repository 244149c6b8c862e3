"""Intake's queries and writes, inside the caller's unit of work (``db``: the kit's
session); nothing here commits (but the rate counters' own autocommit statement) or
emits."""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Integer, Interval, Select, Table, case, func, literal, null, select, text
from sqlalchemy.dialects.postgresql import insert

from services.intake import domain
from services.intake.models import (
    ApiKey,
    ConsentVersion,
    Form,
    Lead,
    Mailbox,
    MailThread,
    Setting,
)
from services.kit import clock
from services.kit.errors import NotFound, ValidationError
from services.kit.group import Group


class Recent:
    """What a public submission reads every time and people change rarely (the form, the
    inbox settings), kept in this process for ``seconds``: a change made through this
    process is seen at once (``forget``), one made through another replica within
    ``seconds``.  Keyed by database, so services on several databases never mix."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.items: dict[tuple[str, str], tuple[float, Any]] = {}

    def get(self, db: Any, key: str, load: Callable[[], Any]) -> Any:
        slot = (str(db.provider.engine.url), key)
        now = time.monotonic()
        kept = self.items.get(slot)
        if kept is not None and kept[0] > now:
            return kept[1]
        if len(self.items) > 10_000:  # public ids are many only under attack: start afresh
            self.items.clear()
            kept = None
        if kept is not None:
            # One reader refreshes; the concurrent submissions meanwhile take the value
            # read a second ago (else every worker running at that moment reads it too).
            self.items[slot] = (now + self.seconds, kept[1])
        try:
            value = load()
        except BaseException:
            self.items.pop(slot, None)  # gone (a form switched off) or not read: ask again
            raise
        self.items[slot] = (time.monotonic() + self.seconds, value)
        return value

    def forget(self) -> None:
        self.items.clear()


RECENT = Recent(1.0)
LEADS: Table = Lead.__table__  # type: ignore[assignment]  # a mapped class's table is a Table
FORM_FIELDS = ("id", "public_id", "name", "fields", "consent_text", "consent_version",
               "min_fill_seconds", "assignee_ids", "allowed_origins", "active")


# -- settings ---------------------------------------------------------------------------

def settings(db: Any) -> dict[str, Any]:
    row = db.get(Setting, "inbox")
    return {**domain.DEFAULT_SETTINGS, **(row.value if row else {})}


def recent_settings(db: Any) -> dict[str, Any]:
    return dict(RECENT.get(db, "settings", lambda: settings(db)))


def save_settings(db: Any, merged: dict[str, Any]) -> None:
    db.execute(insert(Setting).values(key="inbox", value=merged)
               .on_conflict_do_update(index_elements=["key"], set_={"value": merged}))
    RECENT.forget()


# -- rate counters ------------------------------------------------------------------------

def hits(db: Any, keys: list[str], seconds: int, start: datetime | None = None
         ) -> dict[str, int]:
    """Count one hit per key in the current window; the counts so far.  A counter
    row is shared by every submission of a form, so its lock must be held as briefly
    as possible: one autocommit statement (the server takes and frees the lock inside
    it, never across a round trip to us, as an explicit BEGIN … COMMIT would), its
    commit not waiting for the disk (the table is UNLOGGED: a crash may forget a few
    hits, harmless for a rate limit).  Concurrent callers share that statement
    (``counters``)."""
    start = start or domain.window_start(clock.now(), seconds)
    return {key: n for (key, _), n in
            _counters(db, [(k[:400], start, True) for k in sorted(set(keys))]).items()}


def count(db: Any, key: str, seconds: int) -> int:
    """Hits of ``key`` in the current window, without adding one."""
    slot = (key[:400], domain.window_start(clock.now(), seconds))
    return _counters(db, [(*slot, False)])[slot]


def count_and_hit(db: Any, read_key: str, read_seconds: int, keys: list[str], seconds: int
                  ) -> tuple[int, dict[str, int], datetime]:
    """``count(read_key, read_seconds)`` and ``hits(keys, seconds)`` in one statement (a
    submission's failure count and its rate counters: one round trip instead of two, the
    same numbers).  (the count, the hits by key, the hits' window start: what ``unhit``
    takes back)."""
    now = clock.now()
    read = (read_key[:400], domain.window_start(now, read_seconds))
    start = domain.window_start(now, seconds)
    hit = sorted({k[:400] for k in keys})
    found = _counters(db, [(*read, False), *[(k, start, True) for k in hit]])
    return found[read], {k: found[(k, start)] for k in hit}, start


def unhit(db: Any, keys: list[str], start: datetime) -> None:
    """Take back one hit of each key in the window ``start`` (``count_and_hit`` counted a
    submission that was then refused before the limits apply to it)."""
    with db.provider.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(
            "UPDATE rate_counters SET hits = hits - 1 WHERE key = ANY(CAST(:keys AS varchar[]))"
            " AND window_start = :start AND hits > 0"),
            {"keys": sorted({k[:400] for k in keys}), "start": start})


Counted = tuple[str, datetime, bool]  # key, window, True: add a hit (else only read)


def _counters(db: Any, asked: list[Counted]) -> dict[tuple[str, datetime], int]:
    group = COUNTERS.setdefault(str(db.provider.engine.url), Group(counters))
    return dict(group(asked, db.provider.engine))


def counters(batches: list[list[Counted]], engine: Any) -> list[dict[Any, int]]:
    """Many callers' hits and reads of rate counters in one autocommit statement.  Each
    caller sees the counts as if the callers had come one after another in this order:
    the n-th hit of a key in the batch counts n more than the row held before it; a read
    sees the row as it was before the batch."""
    added: dict[tuple[str, datetime], int] = {}
    for asked in batches:
        for key, start, add in asked:
            if add:
                added[(key, start)] = added.get((key, start), 0) + 1
    read = sorted({(k, s) for asked in batches for k, s, add in asked if not add})
    statement = text("""
        WITH hit AS (
            INSERT INTO rate_counters (key, window_start, hits)
            SELECT * FROM unnest(CAST(:keys AS varchar[]), CAST(:starts AS timestamptz[]),
                                 CAST(:ns AS integer[]))
            ON CONFLICT (key, window_start)
                DO UPDATE SET hits = rate_counters.hits + EXCLUDED.hits
            RETURNING key, window_start, hits, true AS added)
        SELECT * FROM hit
        UNION ALL
        SELECT key, window_start, hits, false FROM rate_counters
         WHERE (key, window_start) IN (
            SELECT * FROM unnest(CAST(:read_keys AS varchar[]),
                                 CAST(:read_starts AS timestamptz[])))""")
    with engine.connect() as conn:
        rows = conn.execution_options(isolation_level="AUTOCOMMIT").execute(statement, {
            "keys": [k for k, _ in added], "starts": [s for _, s in added],
            "ns": list(added.values()), "read_keys": [k for k, _ in read],
            "read_starts": [s for _, s in read]}).all()
    after = {(k, s): int(n) for k, s, n, was_added in rows if was_added}
    before = {(k, s): int(n) for k, s, n, was_added in rows if not was_added}
    taken = dict.fromkeys(added, 0)  # hits of each key handed out so far in this batch
    answers = []
    for asked in batches:
        mine: dict[Any, int] = {}
        for key, start, add in asked:
            slot = (key, start)
            if add:
                taken[slot] += 1
                mine[slot] = after[slot] - added[slot] + taken[slot]
            else:
                mine[slot] = before.get(slot, 0)
        answers.append(mine)
    return answers


# Per database: the rate counters' group commit.
COUNTERS: dict[str, Group[list[Counted]]] = {}


# -- leads ------------------------------------------------------------------------------

def insert_lead(db: Any, values: dict[str, Any], pool: list[int] | None = None,
                respond_in: timedelta | None = None) -> Lead | None:
    """The new lead, in one statement; None when the source sent this ``external_id``
    before.  With ``respond_in`` (a visible lead) it is assigned in the same statement:
    round robin over ``pool`` without a shared cursor (lead ids are sequential, so the
    id picks the next person and concurrent submissions never wait on one another), and
    its first-response clock started from its ``received_at``."""
    table = Lead.__table__
    n = select(func.nextval("leads_id_seq").label("id")).cte("n")
    columns: dict[str, Any] = {k: literal(v, table.c[k].type) for k, v in values.items()}
    if respond_in is not None:
        columns["assignee_id"] = (
            case({i: literal(person, Integer()) for i, person in enumerate(pool)},
                 value=n.c.id % len(pool)) if pool else null())
        columns["respond_by"] = func.now() + literal(respond_in, Interval())
    statement = (insert(Lead).from_select(["id", *columns], select(n.c.id, *columns.values()))
                 .on_conflict_do_nothing().returning(Lead))
    return db.scalars(statement).first()


def insert_new_leads(db: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Many visible leads of sources without their own ids (website forms) in three
    round trips whatever their number: their ids and the transaction's time, then one
    multi-row insert per shape of row.  Each row carries ``pool`` and ``respond_in``:
    assigned and its clock started as ``insert_lead`` does (the id picks the person,
    ``respond_by`` counts from ``received_at``).  The rows as stored, in order, with
    ``id``, ``received_at``, ``assignee_id``, ``respond_by``."""
    numbered = db.execute(select(func.nextval("leads_id_seq"), func.now())
                          .select_from(func.generate_series(1, len(rows)))).all()
    stored = []
    for (lead_id, now), row in zip(numbered, rows, strict=True):
        values = {k: v for k, v in row.items() if k not in ("pool", "respond_in")}
        pool = row["pool"]
        stored.append({**values, "id": int(lead_id), "received_at": now,
                       "assignee_id": pool[int(lead_id) % len(pool)] if pool else None,
                       "respond_by": now + row["respond_in"]})
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for values in stored:
        shapes.setdefault(tuple(sorted(values)), []).append(values)
    for same in shapes.values():  # Core, not the ORM's bulk insert: the same rows, less work
        db.execute(LEADS.insert(), same)
    return stored


def lead_by_source_id(db: Any, source: str, source_ref: str, external_id: str | None
                      ) -> Lead:
    return db.scalars(select(Lead).where(Lead.source == source, Lead.source_ref == source_ref,
                                         Lead.external_id == external_id)).one()


def lead(db: Any, lead_id: Any, lock: bool = False) -> Lead:
    stmt = select(Lead).where(Lead.id == domain.an_id(lead_id, "lead_id"),
                              Lead.hidden.is_(False))
    found = db.scalars(stmt.with_for_update() if lock else stmt).first()
    if found is None:
        raise NotFound(f"lead {lead_id} not found", entity="lead", id=lead_id)
    return found


def listed_leads(status: str | None, assignee_id: int | None) -> Select[Any]:
    stmt = select(Lead).where(Lead.hidden.is_(False))
    if status == "open":
        stmt = stmt.where(Lead.status.in_(domain.OPEN_STATUSES))
    elif status:
        if status not in domain.STATUSES:
            raise ValidationError(f"status: one of {', '.join(domain.STATUSES)}",
                                  field="status", key="lead.status")
        stmt = stmt.where(Lead.status == status)
    if assignee_id is not None:
        stmt = stmt.where(Lead.assignee_id == int(assignee_id))
    return stmt


def page_of_leads(db: Any, status: str | None, limit: int, offset: int,
                  assignee_id: int | None) -> tuple[int, list[Lead]]:
    stmt = listed_leads(status, assignee_id)
    total = db.scalar(select(func.count()).select_from(stmt.subquery()))
    items = db.scalars(stmt.order_by(Lead.id.desc())
                       .limit(max(1, min(int(limit), 200))).offset(max(0, int(offset)))).all()
    return int(total or 0), list(items)


def count_open(db: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(Lead).where(
        Lead.hidden.is_(False), Lead.status.in_(domain.OPEN_STATUSES))) or 0)


def claim_without_duplicates(db: Any, limit: int = 50) -> list[Lead]:
    return list(db.scalars(select(Lead).where(
        Lead.duplicates.is_(None), Lead.status == "new", Lead.hidden.is_(False))
        .order_by(Lead.id).limit(limit).with_for_update(skip_locked=True)))


def claim_overdue(db: Any, now: datetime, limit: int = 100) -> list[Lead]:
    return list(db.scalars(select(Lead).where(
        Lead.status == "new", Lead.hidden.is_(False), Lead.escalated_at.is_(None),
        Lead.respond_by < now).order_by(Lead.respond_by).limit(limit)
        .with_for_update(skip_locked=True)))


def claim_unfinished_accept(db: Any, skip: list[int], max_attempts: int) -> Lead | None:
    return db.scalars(select(Lead).where(
        Lead.status == "accepting", Lead.accept_attempts < max_attempts,
        Lead.id.not_in(skip or [0])).order_by(Lead.id).limit(1)
        .with_for_update(skip_locked=True)).first()


def counts_by_source(db: Any, since_id: int) -> dict[str, int]:
    rows = db.execute(select(Lead.source, Lead.hidden, func.count())
                      .where(Lead.id > int(since_id))
                      .group_by(Lead.source, Lead.hidden)).all()
    return {f"{s}{':hidden' if h else ''}": int(n) for s, h, n in rows}


def last_lead_id(db: Any) -> int:
    return int(db.scalar(select(func.max(Lead.id))) or 0)


# -- forms and keys ---------------------------------------------------------------------

def all_of(db: Any, table: type[Form] | type[ApiKey] | type[Mailbox]) -> list[Any]:
    """Every form, key or mailbox, oldest first (there are a handful of each)."""
    return list(db.scalars(select(table).order_by(table.id)))


def form(db: Any, form_id: Any) -> Form:
    found = db.get(Form, domain.an_id(form_id, "form_id"))
    if found is None:
        raise NotFound(f"form {form_id} not found", entity="form", id=form_id)
    return found


def recent_public_form(db: Any, public_id: Any) -> Any:
    """The active form as read within the last second (a snapshot of its columns:
    read-only, never to be changed or added to a session)."""
    def load() -> SimpleNamespace:
        found = public_form(db, public_id)
        return SimpleNamespace(**{k: getattr(found, k) for k in FORM_FIELDS})
    return RECENT.get(db, f"form:{str(public_id)[:40]}", load)


def public_form(db: Any, public_id: Any) -> Form:
    found = db.scalars(select(Form).where(Form.public_id == str(public_id)[:40],
                                          Form.active)).first()
    if found is None:
        raise NotFound("Форма не найдена.", entity="form", id=public_id)
    return found


def keep_consent_version(db: Any, form_row: Form) -> None:
    db.execute(insert(ConsentVersion).values(
        form_id=form_row.id, version=form_row.consent_version, text=form_row.consent_text)
        .on_conflict_do_nothing())


def consent_version(db: Any, form_id: int, version: int) -> ConsentVersion | None:
    return db.get(ConsentVersion, (form_id, version))


def api_key_by_digest(db: Any, digest: str) -> ApiKey | None:
    return db.scalars(select(ApiKey).where(ApiKey.digest == digest)).first()


# -- mail -------------------------------------------------------------------------------

def mail_seen(db: Any, message_id: str) -> bool:
    """A message already threaded or already a lead."""
    threaded = select(MailThread.message_id).where(MailThread.message_id == message_id)
    made = select(Lead.mail_message_id).where(Lead.mail_message_id == message_id)
    return db.scalar(select(threaded.union_all(made).exists())) or False


def threads_of(db: Any, message_ids: list[str]) -> dict[str, int]:
    return {t.message_id: t.deal_id for t in db.scalars(select(MailThread).where(
        MailThread.message_id.in_(message_ids)))}


def remember_thread(db: Any, message_id: str, deal_id: int, direction: str,
                    **more: Any) -> None:
    db.execute(insert(MailThread).values(message_id=message_id, deal_id=deal_id,
                                         direction=direction, **more)
               .on_conflict_do_nothing())


def claim_queued_outbound(db: Any, limit: int = 50) -> list[MailThread]:
    return list(db.scalars(select(MailThread).where(
        MailThread.direction == "out", MailThread.status == "queued")
        .order_by(MailThread.created_at).limit(limit).with_for_update(skip_locked=True)))


def mailbox(db: Any, mailbox_id: Any) -> Mailbox:
    box = db.get(Mailbox, domain.an_id(mailbox_id, "mailbox_id"))
    if box is None:
        raise NotFound(f"mailbox {mailbox_id} not found", entity="mailbox", id=mailbox_id)
    return box
