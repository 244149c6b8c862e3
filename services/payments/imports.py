"""Importing a statement file: stream it into a staging table, keep the transactions not
seen before, match the incoming credits to planned payments — all in the caller's one
transaction, so a file is applied whole or not at all.

Memory stays flat whatever the file size: the parser streams, rows go to PostgreSQL with
COPY as they are read, and matching walks the new rows in batches.  Progress is written on
a separate autocommit connection, so the page sees it while the import's own transaction
is still open.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import Engine, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.kit.errors import ValidationError
from services.payments import domain, store
from services.payments.feeds import StatementInfo, Transaction, detect_format, parse_statement
from services.payments.feeds.textio import HEAD_SIZE
from services.payments.matching import (
    CONFIDENT,
    DOUBTFUL,
    Candidate,
    CandidateQuery,
    MatchResult,
    candidate_query,
    canonical_inn,
    canonical_number,
    match_transaction,
)
from services.payments.models import BankTransaction, ImportProgress, OwnAccount

if TYPE_CHECKING:
    from services.kit.dependencies import Work

log = logging.getLogger("crm.payments.imports")

BATCH = 1000
MAX_IDENTITY = 400
_STORED_NAME = re.compile(r"[0-9a-f]{32}")


# --- where files live ----------------------------------------------------------------------------


class Storage:
    """``<STATEMENTS_DIR>/uploads/<32 hex>``: files the gateway stored for an upload.
    ``<STATEMENTS_INBOX_DIR>``: where a bank client drops statements; taken files move to
    ``processing/``, then ``processed/`` or ``failed/`` (with ``<name>.error.txt``)."""

    def __init__(self, root: str | Path, inbox: str | Path | None = None) -> None:
        self.root = Path(root)
        self.uploads = self.root / "uploads"
        self.inbox = Path(inbox) if inbox else None

    def upload_path(self, stored_name: str) -> Path:
        if not isinstance(stored_name, str) or not _STORED_NAME.fullmatch(stored_name):
            raise ValidationError("file: not an uploaded file's name", field="file")
        return self.uploads / stored_name

    def inbox_dir(self, part: str) -> Path:
        assert self.inbox is not None
        folder = self.inbox / part
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def job_path(self, kind: str, stored_name: str) -> Path:
        if kind == "inbox":
            assert self.inbox is not None
            return self.inbox_dir("processing") / Path(stored_name).name
        return self.upload_path(stored_name)

    def dispose(self, kind: str, stored_name: str, error: str | None) -> None:
        """After the import: an upload is deleted (its transactions are in the database);
        an inbox file moves to processed/ or failed/."""
        try:
            path = self.job_path(kind, stored_name)
        except ValidationError:
            return
        if not path.exists():
            return
        if kind != "inbox":
            path.unlink(missing_ok=True)
            return
        original = path.name.split("__", 1)[-1]
        target = self.inbox_dir("failed" if error else "processed") / _free_name(
            self.inbox_dir("failed" if error else "processed"), original)
        os.replace(path, target)
        if error:
            target.with_name(target.name + ".error.txt").write_text(error + "\n",
                                                                    encoding="utf-8")


def _free_name(folder: Path, name: str) -> str:
    if not (folder / name).exists():
        return name
    stem, dot, suffix = name.rpartition(".")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stem or suffix}-{stamp}-{uuid.uuid4().hex[:6]}{dot}{suffix if stem else ''}"


def sniff(path: Path, max_bytes: int) -> tuple[int, str]:
    """Size and format of a file, checked before anything trusts it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ValidationError("file: the uploaded file is gone", field="file") from None
    if size == 0:
        raise ValidationError("file: the file is empty", field="file")
    if size > max_bytes:
        raise ValidationError(f"file: {size} bytes is more than the limit of {max_bytes}",
                              field="file")
    with path.open("rb") as handle:
        head = handle.read(HEAD_SIZE)
    return size, detect_format(head)


class CountingReader:
    """A binary stream that counts the bytes read through it (for progress)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


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
        table = ImportProgress.__table__
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


def normalise_account(account: str) -> str:
    return "".join(account.split()).upper()


def identity_key(tx: Transaction) -> str:
    """The de-duplication key; bounded, so a freak value cannot break the unique index."""
    identity = tx.identity
    if len(identity) > MAX_IDENTITY:
        return "sha256:" + hashlib.sha256(identity.encode()).hexdigest()
    return identity


@dataclass
class Staged:
    records: int = 0
    credits: int = 0
    debits: int = 0
    statements: int = 0
    warnings: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    formats: set[str] = field(default_factory=set)


def stage(work: Work, records: Iterable[Transaction | StatementInfo],
          on_record: Callable[[int], None]) -> Staged:
    """COPY every transaction of the file into a temporary table as it is parsed.  A
    StatementError from the parser propagates: the caller rolls the whole import back."""
    work.session.execute(_CREATE_STAGE)
    raw = work.session.connection().connection.driver_connection
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
            copy.write_row((staged.records, identity_key(record), own, record.date,
                            record.number, record.amount, record.currency, record.direction,
                            record.reversal, record.payer_name, record.payer_inn,
                            record.payer_account, record.payee_name, record.payee_inn,
                            record.purpose, record.entry_ref, record.document_date,
                            record.location))
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


def keep_new(work: Work, job_id: int) -> dict[str, int]:
    """Transactions not recorded before (by identity), classified; counts per status."""
    work.session.execute(_KEEP_NEW, {"job": job_id})
    return status_counts(work, BankTransaction.import_id == job_id)


def status_counts(work: Work, where: Any) -> dict[str, int]:
    rows = work.session.execute(select(BankTransaction.status, func.count())
                                .where(where).group_by(BankTransaction.status))
    return {status: int(count) for status, count in rows}


# --- candidates ----------------------------------------------------------------------------------

_CANDIDATE_COLUMNS = """p.id, p.deal_id, p.outstanding, p.due_date, p.currency, p.invoice_number,
    p.contract_number, p.version, p.amount, p.received_amount, p.status, c.inn"""
# By the payer's INN, only what a rule can use: the outstanding amount paid exactly (rule a)
# or due near the payment date (rule c); a named document is found by number anyway.
_BY_INN = text(f"""
SELECT DISTINCT ON (p.id) {_CANDIDATE_COLUMNS}
FROM unnest(CAST(:inns AS text[]), CAST(:amounts AS numeric[]), CAST(:froms AS date[]),
            CAST(:tos AS date[])) AS k(inn, amount, due_from, due_to)
JOIN client_refs c ON c.inn = k.inn
JOIN deal_refs d ON d.client_id = c.client_id
JOIN planned_payments p ON p.deal_id = d.deal_id
WHERE p.status IN ('planned', 'partial')
  AND (p.outstanding = k.amount OR p.due_date BETWEEN k.due_from AND k.due_to)""")
_BY_NUMBER = text(f"""
SELECT {_CANDIDATE_COLUMNS}
FROM planned_payments p LEFT JOIN deal_refs d ON d.deal_id = p.deal_id
LEFT JOIN client_refs c ON c.client_id = d.client_id
WHERE p.status IN ('planned', 'partial')
  AND (p.invoice_key = ANY(:invoices) OR p.contract_key = ANY(:contracts))""")
_BY_AMOUNT = text(f"""
SELECT DISTINCT ON (p.id) {_CANDIDATE_COLUMNS}
FROM unnest(CAST(:amounts AS numeric[]), CAST(:froms AS date[]), CAST(:tos AS date[]))
     AS k(amount, due_from, due_to)
JOIN planned_payments p ON p.outstanding = k.amount AND p.due_date BETWEEN k.due_from AND k.due_to
LEFT JOIN deal_refs d ON d.deal_id = p.deal_id
LEFT JOIN client_refs c ON c.client_id = d.client_id
WHERE p.status IN ('planned', 'partial')""")


@dataclass
class OpenPayment:
    """A candidate's current state; changes as this import records receipts."""

    id: int
    deal_id: int
    amount: Decimal
    received: Decimal
    outstanding: Decimal
    due_date: date
    currency: str
    invoice_number: str | None
    contract_number: str | None
    version: int
    status: str
    client_inn: str
    touched: bool = False
    _candidate: Candidate | None = None

    def candidate(self) -> Candidate:
        """The matcher's view, made once and again only after this payment changes."""
        if self._candidate is None:
            self._candidate = Candidate(
                id=self.id, deal_id=self.deal_id, client_inn=self.client_inn,
                amount_outstanding=self.outstanding, due_date=self.due_date,
                currency=self.currency,
                invoice_numbers=(self.invoice_number,) if self.invoice_number else (),
                contract_numbers=(self.contract_number,) if self.contract_number else ())
        return self._candidate


class CandidatePool:
    """Open planned payments of one batch of transactions, fetched with one indexed query
    per kind of key (INN, document number, amount near the due date)."""

    def __init__(self) -> None:
        self.payments: dict[int, OpenPayment] = {}
        self.by_inn: dict[str, set[int]] = defaultdict(set)
        self.by_invoice: dict[str, set[int]] = defaultdict(set)
        self.by_contract: dict[str, set[int]] = defaultdict(set)
        self.by_amount: dict[Decimal, set[int]] = defaultdict(set)

    def load(self, work: Work, queries: list[CandidateQuery]) -> None:
        by_inn = [q for q in queries if q.payer_inn]
        invoices = sorted({n for q in queries for n in q.invoice_numbers})
        contracts = sorted({n for q in queries for n in q.contract_numbers})
        rows: list[Any] = []
        if by_inn:
            rows += work.session.execute(_BY_INN, {
                "inns": [q.payer_inn for q in by_inn], "amounts": [q.amount for q in by_inn],
                "froms": [q.due_from for q in by_inn], "tos": [q.due_to for q in by_inn]}).all()
        if invoices or contracts:
            rows += work.session.execute(_BY_NUMBER, {"invoices": invoices,
                                                      "contracts": contracts}).all()
        if queries:
            rows += work.session.execute(_BY_AMOUNT, {
                "amounts": [q.amount for q in queries], "froms": [q.due_from for q in queries],
                "tos": [q.due_to for q in queries]}).all()
        for row in rows:
            if row.id in self.payments:
                continue
            inn = canonical_inn(row.inn or "")
            self.payments[row.id] = OpenPayment(
                row.id, row.deal_id, row.amount, row.received_amount, row.outstanding,
                row.due_date, row.currency, row.invoice_number, row.contract_number,
                row.version, row.status, inn)
            if inn:
                self.by_inn[inn].add(row.id)
            if row.invoice_number:
                self.by_invoice[canonical_number(row.invoice_number)].add(row.id)
            if row.contract_number:
                self.by_contract[canonical_number(row.contract_number)].add(row.id)
            self.by_amount[row.outstanding].add(row.id)

    def candidates(self, q: CandidateQuery) -> list[Candidate]:
        ids: set[int] = set()
        if q.payer_inn:
            ids |= self.by_inn.get(q.payer_inn, set())
        for number in q.invoice_numbers:
            ids |= self.by_invoice.get(number, set())
        for number in q.contract_numbers:
            ids |= self.by_contract.get(number, set())
        for i in self.by_amount.get(q.amount, set()):
            if q.due_from <= self.payments[i].due_date <= q.due_to:
                ids.add(i)
        found = [self.payments[i] for i in sorted(ids)]
        return [p.candidate() for p in found if p.outstanding > 0 and p.status in ("planned",
                                                                                  "partial")]

    def receive(self, payment_id: int, amount: Decimal) -> OpenPayment:
        p = self.payments[payment_id]
        p.received += amount
        p.status = domain.payment_status(p.amount, p.received)
        p.outstanding = domain.outstanding_of(p.amount, p.received, p.status)
        p.touched = True
        p._candidate = None
        return p


# --- matching ------------------------------------------------------------------------------------


def as_transaction(row: Any) -> Transaction:
    return Transaction(own_account=row.own_account, date=row.booked_on, number=row.number,
                       amount=row.amount, direction=row.direction, currency=row.currency,
                       reversal=row.reversal, payer_name=row.payer_name,
                       payer_inn=row.payer_inn, purpose=row.purpose, entry_ref=row.entry_ref)


@dataclass
class Matched:
    matched: int = 0
    review: int = 0
    unmatched: int = 0
    amount_matched: Decimal = Decimal("0.00")
    deals: set[int] = field(default_factory=set)


_NEXT_BATCH = """SELECT id, own_account, booked_on, number, amount, currency, direction,
    reversal, payer_name, payer_inn, purpose, entry_ref FROM bank_transactions
WHERE status = 'new' AND {where} AND id > :after ORDER BY id LIMIT :limit"""
_LOCK_PAYMENTS = text("SELECT id, version FROM planned_payments WHERE id = ANY(:ids) "
                      "ORDER BY id FOR UPDATE")
_UPDATE_PAYMENTS = text("""
UPDATE planned_payments p SET received_amount = v.received, outstanding = v.outstanding,
    status = v.status, version = p.version + 1, updated_at = now(), updated_by = NULL
FROM unnest(CAST(:ids AS bigint[]), CAST(:received AS numeric[]),
            CAST(:outstanding AS numeric[]), CAST(:statuses AS text[]))
     AS v(id, received, outstanding, status)
WHERE p.id = v.id""")
_INSERT_RECEIPTS = text("""
INSERT INTO receipts (planned_payment_id, deal_id, amount, currency, received_on, source,
    status, bank_transaction_id, created_at)
SELECT v.payment_id, v.deal_id, v.amount, v.currency, v.received_on, 'bank', 'active',
    v.tx_id, now()
FROM unnest(CAST(:payment_ids AS bigint[]), CAST(:deal_ids AS bigint[]),
            CAST(:amounts AS numeric[]), CAST(:currencies AS text[]),
            CAST(:dates AS date[]), CAST(:tx_ids AS bigint[]))
     WITH ORDINALITY AS v(payment_id, deal_id, amount, currency, received_on, tx_id, n)
ORDER BY v.n
RETURNING id, bank_transaction_id""")
_UPDATE_TRANSACTIONS = text("""
UPDATE bank_transactions b SET status = v.status, score = v.score,
    reasons = CAST(v.reasons AS jsonb), candidates = CAST(v.candidates AS jsonb),
    suggested_payment_id = v.suggested
FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:scores AS numeric[]),
            CAST(:reasons AS text[]), CAST(:candidates AS text[]),
            CAST(:suggested AS bigint[]))
     AS v(id, status, score, reasons, candidates, suggested)
WHERE b.id = v.id""")


def match_new(work: Work, where: str, params: dict[str, Any],
              on_progress: Callable[[int, int], None]) -> Matched:
    """Match every transaction with status 'new' selected by ``where`` (SQL over
    bank_transactions), in batches: a confident match records a receipt, a doubtful one
    waits for review, the rest stay unmatched."""
    session = work.session
    total = int(session.scalar(text(f"SELECT count(*) FROM bank_transactions "
                                     f"WHERE status = 'new' AND {where}"), params) or 0)
    query = text(_NEXT_BATCH.format(where=where))
    outcome = Matched()
    done, after = 0, 0
    on_progress(0, total)
    while True:
        rows = session.execute(query, {**params, "after": after, "limit": BATCH}).all()
        if not rows:
            break
        after = rows[-1].id
        _match_batch(work, rows, outcome)
        done += len(rows)
        on_progress(done, total)
    return outcome


def _match_batch(work: Work, rows: list[Any], outcome: Matched) -> None:
    txs = [as_transaction(r) for r in rows]
    queries = [candidate_query(tx) for tx in txs]
    pool = CandidatePool()
    pool.load(work, [q for q in queries if q is not None])
    decisions: list[tuple[Any, MatchResult]] = []
    for row, tx, q in zip(rows, txs, queries, strict=True):
        if q is None:
            result = match_transaction(tx, [])
        else:
            result = match_transaction(tx, pool.candidates(q))
            if result.kind == CONFIDENT and result.payment_id is not None:
                pool.receive(result.payment_id, tx.amount)
        decisions.append((row, result))
    changed = _changed_meanwhile(work, pool)
    receipts, tx_updates = [], []
    for row, result in decisions:
        if result.kind == CONFIDENT and result.payment_id in changed:
            result = MatchResult(DOUBTFUL, result.payment_id, result.score,
                                 ["the planned payment changed while the statement was "
                                  "imported; check it", *result.reasons], result.candidates)
        if result.kind == CONFIDENT and result.payment_id is not None:
            p = pool.payments[result.payment_id]
            receipts.append((p, row))
            status = "matched"
            outcome.matched += 1
            outcome.amount_matched += row.amount
        elif result.kind == DOUBTFUL:
            status = "review"
            outcome.review += 1
        else:
            status = "unmatched"
            outcome.unmatched += 1
        tx_updates.append((row.id, status, Decimal(str(result.score)).quantize(Decimal("0.01")),
                           json.dumps(result.reasons, ensure_ascii=False),
                           json.dumps(result.candidates), result.payment_id))
    _apply(work, pool, changed, receipts, tx_updates, outcome)


def _changed_meanwhile(work: Work, pool: CandidatePool) -> set[int]:
    """Lock the payments this batch pays and find those another transaction changed
    since they were read (their match is then left to a person)."""
    touched = sorted(p.id for p in pool.payments.values() if p.touched)
    if not touched:
        return set()
    versions = dict(work.session.execute(_LOCK_PAYMENTS, {"ids": touched}).all())
    return {i for i in touched if versions.get(i) != pool.payments[i].version}


def _apply(work: Work, pool: CandidatePool, changed: set[int], receipts: list[Any],
           tx_updates: list[tuple[Any, ...]], outcome: Matched) -> None:
    session = work.session
    if receipts:
        paid = [p for p in pool.payments.values() if p.touched and p.id not in changed]
        session.execute(_UPDATE_PAYMENTS, {
            "ids": [p.id for p in paid], "received": [p.received for p in paid],
            "outstanding": [p.outstanding for p in paid], "statuses": [p.status for p in paid]})
        inserted = session.execute(_INSERT_RECEIPTS, {
            "payment_ids": [p.id for p, _ in receipts],
            "deal_ids": [p.deal_id for p, _ in receipts],
            "amounts": [r.amount for _, r in receipts],
            "currencies": [p.currency for p, _ in receipts],
            "dates": [r.booked_on for _, r in receipts], "tx_ids": [r.id for _, r in receipts],
        }).all()
        receipt_of = {tx_id: receipt_id for receipt_id, tx_id in inserted}
        store.emit_many(work, [("payment_received", {
            "receipt_id": receipt_of[r.id], "payment_id": p.id, "deal_id": p.deal_id,
            "amount": r.amount, "currency": p.currency, "received_on": r.booked_on,
            "source": "bank", "user_id": None}) for p, r in receipts])
        outcome.deals.update(p.deal_id for p, _ in receipts)
    if tx_updates:
        columns = list(zip(*tx_updates, strict=True))
        session.execute(_UPDATE_TRANSACTIONS, {
            "ids": list(columns[0]), "statuses": list(columns[1]), "scores": list(columns[2]),
            "reasons": list(columns[3]), "candidates": list(columns[4]),
            "suggested": list(columns[5])})


class Clock:
    """Seconds spent in each phase of an import (shown with its result)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        moment = time.monotonic()
        self.laps[name] = round(moment - self._last, 3)
        self._last = moment


# --- one job -------------------------------------------------------------------------------------


def import_file(work: Work, job_id: int, filename: str, path: Path,
                progress: Progress) -> dict[str, Any]:
    """Parse, de-duplicate and match one statement file inside the caller's transaction.
    Raises StatementError (nothing is to be kept) when the file cannot be parsed."""
    size = path.stat().st_size
    clock = Clock()
    with path.open("rb") as raw:
        reader = CountingReader(raw)
        records = parse_statement(reader, filename)
        staged = stage(work, records, lambda _: progress.set("reading", reader.count, size))
    clock.lap("reading")
    progress.set("matching", 0, 0, force=True)
    counts = keep_new(work, job_id)
    clock.lap("deduplicating")
    matched = match_new(work, "import_id = :job", {"job": job_id},
                        lambda done, total: progress.set("matching", done, total))
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
        "timings": clock.laps,
    }


def rematch_account(work: Work, account: str, progress: Progress) -> dict[str, Any]:
    """Credits to an account that was not ours when they were imported, matched now."""
    reopened = work.session.execute(
        text("UPDATE bank_transactions SET status = 'new' "
             "WHERE status = 'foreign_account' AND own_account = :account"),
        {"account": account}).rowcount
    matched = match_new(work, "own_account = :account", {"account": account},
                        lambda done, total: progress.set("matching", done, total))
    budgets = store.publish_budgets(work, matched.deals, None)
    return {"records": reopened, "credits": reopened, "debits": 0, "new": reopened,
            "duplicates": 0, "ignored": 0, "foreign_account": 0, "matched": matched.matched,
            "review": matched.review, "unmatched": matched.unmatched,
            "amount_matched": str(matched.amount_matched), "deals": budgets, "warnings": [],
            "accounts": [account], "unknown_accounts": []}
