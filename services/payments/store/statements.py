"""The statement import's queries: stream a file into a staging table, keep the
transactions not seen before, match the incoming credits to planned payments — all in the
caller's one transaction, so a file is applied whole or not at all.  The rules each step
asks are in ``domain.statements`` and ``domain.matching``.

Memory stays flat whatever the file size: the parser streams, rows go to PostgreSQL with
COPY as they are read, and matching walks the new rows in batches.  Progress is written on
a separate autocommit connection, so the page sees it while the import's own transaction
is still open.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from psycopg.rows import namedtuple_row
from sqlalchemy import Engine, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.kit.db import driver_connection, rowcount, table_of
from services.payments import store
from services.payments.domain.matching import (
    CONFIDENT,
    DOUBTFUL,
    WINDOW_DAYS,
    MatchResult,
    candidate_query,
)
from services.payments.domain.statements import (
    Clock,
    Matched,
    Paid,
    Staged,
    as_transaction,
    decide_chunk,
    identity_key,
    normalise_account,
)
from services.payments.feeds import StatementInfo, Transaction, parse_statement
from services.payments.models import BankTransaction, ImportProgress, OwnAccount
from services.payments.store.files import CountingReader

if TYPE_CHECKING:
    from services.kit.dependencies import Work

log = logging.getLogger("crm.payments.imports")

BATCH = 1000


# --- progress ------------------------------------------------------------------------------------


class Progress:
    """Where an import is, for the page: written at most every ``interval`` seconds on its
    own autocommit connection."""

    def __init__(self, engine: Engine | None, job_id: int, interval: float = 0.5) -> None:
        self.engine = engine
        self.job_id = job_id
        self.interval = interval
        self._last = 0.0
        self._conn: Any = None

    def set(self, phase: str, done: int, total: int, force: bool = False) -> None:
        if self.engine is None:
            return
        moment = time.monotonic()
        if not force and moment - self._last < self.interval:
            return
        self._last = moment
        if self._conn is None:
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        table = table_of(ImportProgress)
        values = {"job_id": self.job_id, "phase": phase, "done": done, "total": total,
                  "updated_at": store.now()}
        self._conn.execute(pg_insert(table).values(values).on_conflict_do_update(
            index_elements=[table.c.job_id], set_=values))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- staging -------------------------------------------------------------------------------------

_STAGE_COLUMNS = ("seq", "identity", "own_account", "booked_on", "number", "amount", "currency",
                  "direction", "reversal", "payer_name", "payer_inn", "payer_account",
                  "payee_name", "payee_inn", "purpose", "entry_ref", "document_date",
                  "location")
_CREATE_STAGE = text("""
CREATE TEMP TABLE staged_transactions (
    seq bigint, identity text, own_account text, booked_on date, number text,
    amount numeric(18, 2), currency text, direction text, reversal boolean, payer_name text,
    payer_inn text, payer_account text, payee_name text, payee_inn text, purpose text,
    entry_ref text, document_date date, location text) ON COMMIT DROP""")


def stage(work: Work, records: Iterable[Transaction | StatementInfo],
          on_record: Callable[[int], None]) -> Staged:
    """COPY every transaction of the file into a temporary table as it is parsed.  A
    StatementError from the parser propagates: the caller rolls the whole import back."""
    work.session.execute(_CREATE_STAGE)
    raw = driver_connection(work.session)
    staged = Staged()
    columns = ", ".join(_STAGE_COLUMNS)
    with raw.cursor() as cursor, cursor.copy(
            f"COPY staged_transactions ({columns}) FROM STDIN") as copy:
        for record in records:
            if isinstance(record, StatementInfo):
                staged.statements += 1
                staged.formats.add(record.format)
                staged.warnings.extend(record.warnings)
                for account in record.accounts:
                    account = normalise_account(account)
                    if account and account not in staged.accounts:
                        staged.accounts.append(account)
                continue
            staged.records += 1
            if record.direction == "credit":
                staged.credits += 1
            else:
                staged.debits += 1
            own = normalise_account(record.own_account)
            if own and own not in staged.accounts:
                staged.accounts.append(own)
            moment = time.monotonic()
            copy.write_row((staged.records, identity_key(record), own, record.date,
                            record.number, record.amount, record.currency, record.direction,
                            record.reversal, record.payer_name, record.payer_inn,
                            record.payer_account, record.payee_name, record.payee_inn,
                            record.purpose, record.entry_ref, record.document_date,
                            record.location))
            staged.copy_seconds += time.monotonic() - moment
            if staged.records % 200 == 0:
                on_record(staged.records)
    return staged


_KEEP_NEW = text("""
INSERT INTO bank_transactions (identity, import_id, own_account, booked_on, number, amount,
    currency, direction, reversal, payer_name, payer_inn, payer_account, payee_name,
    payee_inn, purpose, entry_ref, document_date, location, status)
SELECT s.identity, :job, s.own_account, s.booked_on, s.number, s.amount, s.currency,
    s.direction, s.reversal, s.payer_name, s.payer_inn, s.payer_account, s.payee_name,
    s.payee_inn, s.purpose, s.entry_ref, s.document_date, s.location,
    CASE WHEN s.direction <> 'credit' OR s.reversal THEN 'ignored'
         WHEN EXISTS (SELECT 1 FROM own_accounts o WHERE o.account = s.own_account) THEN 'new'
         ELSE 'foreign_account' END
FROM staged_transactions s ORDER BY s.seq
ON CONFLICT (identity) DO NOTHING""")


# The new transactions of a file held in a temporary table, with the ids they will have
# (drawn in file order), so they are matched before they are written: one INSERT with
# their decisions (gathered in match_results) instead of an INSERT and an UPDATE of every
# row.  New means: no stored
# transaction has its identity, and it is the first of the file with it (what _KEEP_NEW's
# ON CONFLICT keeps).
_CREATE_FRESH = text("""
CREATE TEMP TABLE fresh_transactions ON COMMIT DROP AS
SELECT nextval(pg_get_serial_sequence('bank_transactions', 'id')) AS id, s.identity,
    s.own_account, s.booked_on, s.number, s.amount, s.currency, s.direction, s.reversal,
    s.payer_name, s.payer_inn, s.payer_account, s.payee_name, s.payee_inn, s.purpose,
    s.entry_ref, s.document_date, s.location,
    CAST(CASE WHEN s.direction <> 'credit' OR s.reversal THEN 'ignored'
         WHEN EXISTS (SELECT 1 FROM own_accounts o WHERE o.account = s.own_account) THEN 'new'
         ELSE 'foreign_account' END AS text) AS status
FROM staged_transactions s
WHERE s.seq IN (SELECT DISTINCT ON (identity) seq FROM staged_transactions
                ORDER BY identity, seq)
  AND NOT EXISTS (SELECT 1 FROM bank_transactions b WHERE b.identity = s.identity)
ORDER BY s.seq""")
_WRITE_FRESH = text("""
INSERT INTO bank_transactions (id, identity, import_id, own_account, booked_on, number,
    amount, currency, direction, reversal, payer_name, payer_inn, payer_account, payee_name,
    payee_inn, purpose, entry_ref, document_date, location, status, score, reasons,
    candidates, suggested_payment_id)
SELECT f.id, f.identity, :job, f.own_account, f.booked_on, f.number, f.amount, f.currency,
    f.direction, f.reversal, f.payer_name, f.payer_inn, f.payer_account, f.payee_name,
    f.payee_inn, f.purpose, f.entry_ref, f.document_date, f.location,
    coalesce(r.status, f.status), r.score, CAST(r.reasons AS jsonb),
    CAST(r.candidates AS jsonb), r.suggested
FROM fresh_transactions f LEFT JOIN match_results r ON r.tx_id = f.id ORDER BY f.id
ON CONFLICT (identity) DO NOTHING""")


FRESH = "fresh_transactions"


class Raced(Exception):
    """Another import wrote some of this file's transactions after they were found new."""


def keep_new(work: Work, job_id: int) -> dict[str, int]:
    """Transactions not recorded before (by identity), classified; counts per status."""
    work.session.execute(_KEEP_NEW, {"job": job_id})
    return status_counts(work, BankTransaction.import_id == job_id)


def status_counts(work: Work, where: Any) -> dict[str, int]:
    rows = work.session.execute(select(BankTransaction.status, func.count())
                                .where(where).group_by(BankTransaction.status))
    return {status: int(count) for status, count in rows}


# --- matching, a chunk of transactions at a time -------------------------------------------------
#
# A chunk of new transactions (in id order, which is file order) is matched with a few
# statements: their lookup keys (payer INN, document numbers from the purpose, amount, the
# date window) go to a temporary table by COPY, one query joins them to the open planned
# payments and returns only the evidence a rule can use, the rules decide in order, and
# the results are written back with a handful of set-based statements.  A confident match
# pays its planned payment in full, so later transactions of the chunk no longer see it,
# exactly as if they were matched one by one; when that leaves a transaction without the
# evidence its rule was pruned to, the chunk ends there and the next one reads afresh.

# A chunk's rows, its decisions as they will be written and the payments it pays are the
# matching's working set (about 2 KB a transaction of the chunk): 1,000 keeps the
# matching's peak near the parser's (a 20,000-line import grew the service by 3.6 MB
# with 1,000, 6.6 MB with 2,500), and the extra chunks cost nothing measurable next to
# the statements themselves.
CHUNK = 1_000

_CREATE_KEYS = text("""
CREATE TEMP TABLE IF NOT EXISTS match_keys (
    tx_id bigint PRIMARY KEY, payer text, amount numeric(18, 2), currency text,
    booked_on date, invoices text[], contracts text[]) ON COMMIT DROP""")
_CREATE_RESULTS = text("""
CREATE TEMP TABLE IF NOT EXISTS match_results (
    tx_id bigint, status text, score numeric, reasons text, candidates text,
    suggested bigint, payment_id bigint, deal_id bigint, amount numeric(18, 2),
    currency text, received_on date) ON COMMIT DROP""")
_CREATE_PAID = text("""
CREATE TEMP TABLE IF NOT EXISTS match_paid (
    id bigint, received numeric(18, 2), outstanding numeric(18, 2), status text)
    ON COMMIT DROP""")
# Read with the driver's cursor into plain named tuples: a chunk and its evidence are
# tens of thousands of rows that need nothing of SQLAlchemy's rows.  Only what the keys and
# the rules read (``as_transaction``): a chunk's rows are a good part of its working set.
_NEXT_CHUNK = """SELECT id, booked_on, amount, currency, direction, reversal, payer_inn, purpose
FROM {table} WHERE status = 'new' AND {where} AND id > %(after)s ORDER BY id LIMIT %(limit)s"""
_OPEN = "p.status IN ('planned', 'partial')"
# Every kind of hit, each through its own index: the payer's client (amount equal or due
# near the payment date), a document number named in the purpose, and for a file without
# INNs the amount near the due date.  Then the rule a transaction falls under decides
# which of its hits matter (see ``matching.decide``): the rest are not fetched.
_PAYMENT = """p.id, p.deal_id, p.amount, p.received_amount, p.outstanding, p.status, p.version,
    p.due_date, p.currency, p.invoice_key, p.invoice_number, p.contract_key,
    p.contract_number"""
# The client of a payment found by number or amount.  "OFFSET 0" keeps each lateral lookup
# a lookup (an index probe per key): flattened, the planner reads whole tables instead
# (the payer's client too: hashing all of client_refs for every chunk cost more than the
# chunk's probes, and made smaller chunks dearer).
_CLIENT_OF = """LEFT JOIN LATERAL (SELECT c.inn FROM deal_refs d
    JOIN client_refs c ON c.client_id = d.client_id WHERE d.deal_id = p.deal_id
    OFFSET 0) c ON true"""
_EVIDENCE = f"""
WITH found AS (
    SELECT k.tx_id, {_PAYMENT}, c.inn FROM match_keys k
    CROSS JOIN LATERAL (SELECT c.client_id, c.inn FROM client_refs c WHERE c.inn = k.payer
        OFFSET 0) c
    JOIN deal_refs d ON d.client_id = c.client_id
    CROSS JOIN LATERAL (SELECT * FROM planned_payments p WHERE p.deal_id = d.deal_id
        AND {_OPEN} AND (p.outstanding = k.amount OR p.due_date
                         BETWEEN k.booked_on - %(window)s AND k.booked_on + %(window)s)
        OFFSET 0) p
    UNION
    SELECT k.tx_id, {_PAYMENT}, c.inn FROM match_keys k
    CROSS JOIN LATERAL unnest(k.invoices) AS n(key)
    CROSS JOIN LATERAL (SELECT * FROM planned_payments p WHERE p.invoice_key = n.key
        AND {_OPEN} OFFSET 0) p {_CLIENT_OF}
    UNION
    SELECT k.tx_id, {_PAYMENT}, c.inn FROM match_keys k
    CROSS JOIN LATERAL unnest(k.contracts) AS n(key)
    CROSS JOIN LATERAL (SELECT * FROM planned_payments p WHERE p.contract_key = n.key
        AND {_OPEN} OFFSET 0) p {_CLIENT_OF}
    UNION
    SELECT k.tx_id, {_PAYMENT}, c.inn FROM match_keys k
    CROSS JOIN LATERAL (SELECT * FROM planned_payments p WHERE p.outstanding = k.amount
        AND p.due_date BETWEEN k.booked_on - %(window)s AND k.booked_on + %(window)s AND {_OPEN}
        OFFSET 0) p {_CLIENT_OF}
    WHERE k.payer = ''
), facts AS (
    SELECT f.tx_id, f.id, f.deal_id, f.amount, f.received_amount, f.outstanding, f.status,
        f.version, f.due_date, f.currency, coalesce(f.inn, '') AS client_inn,
        (k.payer <> '' AND coalesce(f.inn = k.payer, false)) AS inn,
        f.outstanding = k.amount AS equal,
        k.amount < f.outstanding AS partial,
        CASE WHEN f.invoice_key = ANY(k.invoices) THEN 'invoice ' || f.invoice_number
             WHEN f.contract_key = ANY(k.contracts) THEN 'contract ' || f.contract_number
             ELSE '' END AS named,
        abs(k.booked_on - f.due_date) <= %(window)s AS near, k.payer = '' AS no_inn
    FROM found f JOIN match_keys k ON k.tx_id = f.tx_id
    WHERE f.outstanding > 0 AND f.currency = k.currency
), hits AS (
    SELECT *, count(*) FILTER (WHERE inn AND equal) OVER w AS rule_a,
        count(*) FILTER (WHERE named <> '' AND equal) OVER w AS rule_b
    FROM facts
    WHERE named <> '' OR (near AND (inn OR (equal AND no_inn))) OR (inn AND equal)
    WINDOW w AS (PARTITION BY tx_id)
)
SELECT tx_id, id, deal_id, amount, received_amount, outstanding, status, version, due_date,
    currency, client_inn, inn, equal, partial, named, near,
    CASE WHEN rule_a > 0 THEN 'a' WHEN rule_b > 0 THEN 'b' ELSE 'c' END AS pruned_to
FROM hits
WHERE (rule_a > 0 AND inn AND equal) OR (rule_a = 0 AND rule_b > 0 AND named <> '' AND equal)
   OR (rule_a = 0 AND rule_b = 0)
ORDER BY tx_id, id"""
_LOCK_PAYMENTS = text("SELECT id, version FROM planned_payments WHERE id = ANY(:ids) "
                      "ORDER BY id FOR UPDATE")
_APPLY_TRANSACTIONS = text("""
UPDATE bank_transactions b SET status = r.status, score = r.score,
    reasons = CAST(r.reasons AS jsonb), candidates = CAST(r.candidates AS jsonb),
    suggested_payment_id = r.suggested
FROM match_results r WHERE b.id = r.tx_id""")
_APPLY_PAYMENTS = text("""
UPDATE planned_payments p SET received_amount = v.received, outstanding = v.outstanding,
    status = v.status, version = p.version + 1, updated_at = now(), updated_by = NULL
FROM match_paid v WHERE p.id = v.id""")
# Receipts in file order, and one payment_received each through the outbox (the same
# envelope as ``work.emit``: amounts as strings, dates in ISO 8601).
_APPLY_RECEIPTS = """
WITH made AS (
    INSERT INTO receipts (planned_payment_id, deal_id, amount, currency, received_on, source,
        status, bank_transaction_id, created_at)
    SELECT payment_id, deal_id, amount, currency, received_on, 'bank', 'active', tx_id, now()
    FROM {results} WHERE status = 'matched' ORDER BY tx_id
    RETURNING id, planned_payment_id, deal_id, amount, currency, received_on,
        bank_transaction_id)
INSERT INTO outbox (event_id, type, version, occurred_at, data, call_id)
SELECT gen_random_uuid(), 'payment_received', 1, now(), jsonb_build_object(
    'receipt_id', id, 'payment_id', planned_payment_id, 'deal_id', deal_id,
    'amount', amount::text, 'currency', currency,
    'received_on', to_char(received_on, 'YYYY-MM-DD'), 'source', 'bank', 'user_id', NULL),
    :call_id
FROM made ORDER BY bank_transaction_id"""


def match_new(work: Work, where: str, params: dict[str, Any],
              on_progress: Callable[[int, int], None],
              table: str = "bank_transactions") -> Matched:
    """Match every transaction with status 'new' selected by ``where`` (SQL over
    ``table``, parameters as ``%(name)s``), a chunk at a time: a confident match records a
    receipt, a doubtful one waits for review, the rest stay unmatched.  Over
    ``fresh_transactions`` the decisions of every chunk stay in match_results, and the
    receipts wait, until ``match_fresh`` writes the rows they refer to."""
    session = work.session
    raw = driver_connection(session)
    with raw.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE status = 'new' AND {where}",
                       params)
        total = int(cursor.fetchone()[0])
    # The evidence query's estimated cost (many index probes) makes PostgreSQL compile it
    # with JIT, which takes longer (about a second per chunk) than running it.
    session.execute(text("SET LOCAL jit = off"))
    for create in (_CREATE_KEYS, _CREATE_RESULTS, _CREATE_PAID):
        session.execute(create)
    query = _NEXT_CHUNK.format(where=where, table=table)
    outcome = Matched()
    done, after = 0, 0
    on_progress(0, total)
    while True:
        with raw.cursor(row_factory=namedtuple_row) as cursor:
            rows = cursor.execute(query, {**params, "after": after, "limit": CHUNK}).fetchall()
        if not rows:
            break
        taken = _match_chunk(work, rows, outcome, table)
        after = rows[taken - 1].id
        done += taken
        on_progress(done, total)
    return outcome


def _match_chunk(work: Work, rows: Sequence[Any], outcome: Matched, table: str) -> int:
    """Match ``rows`` (or the first part of them, see above); the number matched."""
    session = work.session
    raw = driver_connection(session)
    moment = time.monotonic()
    session.execute(text("TRUNCATE match_keys, match_paid" if table == FRESH
                         else "TRUNCATE match_keys, match_results, match_paid"))
    with raw.cursor() as cursor, cursor.copy(
            "COPY match_keys (tx_id, payer, amount, currency, booked_on, invoices, contracts) "
            "FROM STDIN") as copy:
        for row in rows:
            tx = as_transaction(row)
            query = candidate_query(tx)
            if query is not None:
                copy.write_row((row.id, query.payer_inn or "", tx.amount, tx.currency, tx.date,
                                _array(query.invoice_numbers), _array(query.contract_numbers)))
    moment = outcome.took("keys", moment)
    paid: dict[int, Paid] = {}
    with raw.cursor(row_factory=namedtuple_row) as cursor:
        cursor.execute(_EVIDENCE, {"window": WINDOW_DAYS})
        moment = outcome.took("evidence SQL", moment)
        decided = [_decided(row, result)
                   for row, result in decide_chunk(_with_evidence(rows, cursor), paid)]
    moment = outcome.took("rules", moment)
    changed = _changed_meanwhile(work, paid)
    moment = outcome.took("lock", moment)
    _write(work, decided, paid, changed, outcome, table)
    return len(decided)


# A chunk's working set is what sets the import's peak memory: the evidence is read a
# transaction at a time (it comes ordered by tx_id, as the rows by id), so only one
# transaction's facts and transaction are objects at once, and each decision is kept
# only as the row it will be written as.
def _with_evidence(rows: Sequence[Any], cursor: Any) -> Iterator[tuple[Any, Transaction,
                                                                        list[Any]]]:
    fact = cursor.fetchone()
    for row in rows:
        facts = []
        while fact is not None and fact.tx_id == row.id:
            facts.append(fact)
            fact = cursor.fetchone()
        yield row, as_transaction(row), facts


def _decided(row: Any, result: MatchResult) -> tuple[Any, ...]:
    """A decision as ``_write`` takes it: (tx_id, amount, booked_on, kind, payment_id,
    score, reasons as JSON, candidates as JSON)."""
    return (row.id, row.amount, row.booked_on, result.kind, result.payment_id,
            _score(result.score), _reasons_json(result.reasons),
            _candidates_json(result.candidates))


def _array(numbers: tuple[str, ...]) -> str:
    """A text[] literal for COPY, cheaper than the driver's list adaptation.  Canonical
    document numbers hold only letters, digits and / _ . - (``matching._NUMBER``), so
    quoting each element is all the escaping they need (and keeps "NULL" a string)."""
    if not numbers:
        return "{}"
    return '{"' + '","'.join(numbers) + '"}'


# One encoder for every row: json.dumps with an option builds a new encoder per call.
_reasons_json = json.JSONEncoder(ensure_ascii=False).encode
_candidates_json = json.JSONEncoder().encode


@lru_cache(maxsize=256)  # a handful of distinct scores: convert each once
def _score(score: float) -> Decimal:
    return Decimal(str(score)).quantize(Decimal("0.01"))


CHANGED_MEANWHILE = "the planned payment changed while the statement was imported; check it"


def _changed_meanwhile(work: Work, paid: dict[int, Paid]) -> set[int]:
    """Lock the payments this chunk pays and find those another transaction changed
    since they were read (their match is then left to a person)."""
    if not paid:
        return set()
    versions: dict[int, int] = dict(
        work.session.execute(_LOCK_PAYMENTS, {"ids": sorted(paid)}).all())
    return {i for i, p in paid.items() if versions.get(i) != p.version}


def _write(work: Work, decided: list[tuple[Any, ...]],
           paid: dict[int, Paid], changed: set[int], outcome: Matched, table: str) -> None:
    session = work.session
    raw = driver_connection(session)
    receipts = 0
    moment = time.monotonic()
    with raw.cursor() as cursor, cursor.copy(
            "COPY match_results (tx_id, status, score, reasons, candidates, suggested, "
            "payment_id, deal_id, amount, currency, received_on) FROM STDIN") as copy:
        for tx_id, amount, booked_on, kind, payment_id, score, reasons, candidates in decided:
            payment: Paid | None = None
            if kind == CONFIDENT and payment_id in changed:
                kind = DOUBTFUL
                reasons = _reasons_json([CHANGED_MEANWHILE, *json.loads(reasons)])
            if kind == CONFIDENT and payment_id is not None:
                payment = paid[payment_id]
                outcome.deals.add(payment.deal_id)
                status = "matched"
                outcome.matched += 1
                outcome.amount_matched += amount
                receipts += 1
            elif kind == DOUBTFUL:
                status = "review"
                outcome.review += 1
            else:
                status = "unmatched"
                outcome.unmatched += 1
            copy.write_row((
                tx_id, status, score, reasons, candidates, payment_id,
                payment and payment.id, payment and payment.deal_id,
                amount, payment and payment.currency, booked_on))
    with raw.cursor() as cursor, cursor.copy(
            "COPY match_paid (id, received, outstanding, status) FROM STDIN") as copy:
        for p in paid.values():
            if p.id not in changed:
                copy.write_row((p.id, p.received, p.outstanding, p.status))
    moment = outcome.took("results COPY", moment)
    if table != FRESH:
        session.execute(_APPLY_TRANSACTIONS)
        moment = outcome.took("transactions UPDATE", moment)
    if receipts:
        session.execute(_APPLY_PAYMENTS)
        moment = outcome.took("payments UPDATE", moment)
        if table == FRESH:
            outcome.receipts += receipts
            return
        _record_receipts(work, "match_results")
        outcome.took("receipts+outbox INSERT", moment)
        work.emitted += receipts


def _record_receipts(work: Work, results: str) -> None:
    stack = getattr(work.worker_ctx, "call_id_stack", None)
    work.session.execute(text(_APPLY_RECEIPTS.format(results=results)),
                         {"call_id": stack[-1] if stack else None})


def match_fresh(work: Work, job_id: int, clock: Clock,
                on_progress: Callable[[int, int], None]) -> tuple[dict[str, int], Matched]:
    """The file's new transactions (``stage`` put them in staged_transactions) found,
    matched and then written with their decisions, and the receipts of the matched ones
    recorded.  Raises ``Raced`` when another import wrote some of them meanwhile (run
    this in a savepoint: ``keep_new`` and ``match_new`` then do it the other way)."""
    session = work.session
    session.execute(_CREATE_FRESH)
    # the chunks are read by id, and the UPDATEs join on it
    session.execute(text("CREATE INDEX ON fresh_transactions (id)"))
    session.execute(text("ANALYZE fresh_transactions"))
    counts = {status: int(count) for status, count in session.execute(text(
        "SELECT status, count(*) FROM fresh_transactions GROUP BY status"))}
    clock.lap("deduplicating")
    matched = match_new(work, "true", {}, on_progress, table=FRESH)
    moment = time.monotonic()
    written = rowcount(session.execute(_WRITE_FRESH, {"job": job_id}))
    if written != sum(counts.values()):
        raise Raced(f"{sum(counts.values()) - written} transactions were written meanwhile")
    moment = matched.took("transactions INSERT", moment)
    if matched.receipts:
        _record_receipts(work, "match_results")
        matched.took("receipts+outbox INSERT", moment)
        work.emitted += matched.receipts
    return counts, matched


# --- one job -------------------------------------------------------------------------------------


def import_file(work: Work, job_id: int, filename: str, path: Path,
                progress: Progress) -> dict[str, Any]:
    """Parse, de-duplicate and match one statement file inside the caller's transaction.
    Raises StatementError (nothing is to be kept) when the file cannot be parsed."""
    size = path.stat().st_size
    clock = Clock()
    with path.open("rb") as raw:
        reader = CountingReader(raw)
        records = parse_statement(cast(BinaryIO, reader), filename)  # reads like a file
        staged = stage(work, records, lambda _: progress.set("reading", reader.count, size))
    clock.lap("reading")
    progress.set("matching", 0, 0, force=True)

    def on_progress(done: int, total: int) -> None:
        progress.set("matching", done, total)

    savepoint = work.session.begin_nested()
    try:
        counts, matched = match_fresh(work, job_id, clock, on_progress)
        savepoint.commit()
    except Raced as race:  # rare: two imports of overlapping files at once
        savepoint.rollback()
        log.info("import %s: %s; matching after writing instead", job_id, race)
        counts = keep_new(work, job_id)
        clock.lap("deduplicating")
        matched = match_new(work, "import_id = %(job)s", {"job": job_id}, on_progress)
    clock.lap("matching")
    budgets = store.publish_budgets(work, matched.deals, None)
    clock.lap("budgets")
    own = set(work.session.scalars(select(OwnAccount.account)))
    new = sum(counts.values())
    return {
        "records": staged.records, "credits": staged.credits, "debits": staged.debits,
        "statements": staged.statements, "formats": sorted(staged.formats),
        "new": new, "duplicates": staged.records - new,
        "ignored": counts.get("ignored", 0), "foreign_account": counts.get("foreign_account", 0),
        "matched": matched.matched, "review": matched.review, "unmatched": matched.unmatched,
        "amount_matched": str(matched.amount_matched), "deals": budgets,
        "warnings": staged.warnings[:100], "accounts": staged.accounts,
        "unknown_accounts": [a for a in staged.accounts if a not in own],
        "timings": {**clock.laps, "reading: COPY": round(staged.copy_seconds, 3),
                    **{f"matching: {k}": round(v, 3) for k, v in matched.steps.items()}},
    }


def rematch_account(work: Work, account: str, progress: Progress) -> dict[str, Any]:
    """Credits to an account that was not ours when they were imported, matched now."""
    reopened = rowcount(work.session.execute(
        text("UPDATE bank_transactions SET status = 'new' "
             "WHERE status = 'foreign_account' AND own_account = :account"),
        {"account": account}))
    matched = match_new(work, "own_account = %(account)s", {"account": account},
                        lambda done, total: progress.set("matching", done, total))
    budgets = store.publish_budgets(work, matched.deals, None)
    return {"records": reopened, "credits": reopened, "debits": 0, "new": reopened,
            "duplicates": 0, "ignored": 0, "foreign_account": 0, "matched": matched.matched,
            "review": matched.review, "unmatched": matched.unmatched,
            "amount_matched": str(matched.amount_matched), "deals": budgets, "warnings": [],
            "accounts": [account], "unknown_accounts": []}
