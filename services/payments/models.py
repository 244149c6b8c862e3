"""Tables of the payments database (crm_payments)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.kit.db import NAMING
from services.kit.idempotency import idempotency_table
from services.kit.messaging import messaging_tables


class Base(DeclarativeBase):
    """This database's tables (a class statement, so type checkers see the models)."""

    metadata = MetaData(naming_convention=NAMING)


metadata = Base.metadata
outbox, inbox = messaging_tables(metadata)
idempotent_calls = idempotency_table(metadata)  # repeats of one write answered once

OPEN = ("planned", "partial")  # a planned payment that still expects money
OPEN_SQL = "status IN ('planned', 'partial')"


class DealBudget(Base):
    """The deal's budget as last published; the row lock orders concurrent changes and
    ``revision`` lets deals ignore a late, older ``budget_changed``."""

    __tablename__ = "deal_budgets"

    deal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    budget: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    revision: Mapped[int] = mapped_column(Integer, default=0)


class PlannedPayment(Base):
    """One expected payment of a deal.  ``outstanding`` is kept equal to
    max(amount - received_amount, 0) for open payments (0 once paid or cancelled) so the
    matcher can look payments up by amount through an index."""

    __tablename__ = "planned_payments"
    __table_args__ = (
        Index("ix_planned_payments_open_invoice", "invoice_key",
              postgresql_where=text(f"{OPEN_SQL} AND invoice_key IS NOT NULL")),
        Index("ix_planned_payments_open_contract", "contract_key",
              postgresql_where=text(f"{OPEN_SQL} AND contract_key IS NOT NULL")),
        Index("ix_planned_payments_open_amount", "outstanding", "due_date",
              postgresql_where=text(OPEN_SQL)),
        Index("ix_planned_payments_open_due", "due_date", postgresql_where=text(OPEN_SQL)),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int] = mapped_column(BigInteger, index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    due_date: Mapped[date] = mapped_column(Date, index=True)
    comment: Mapped[str | None] = mapped_column(Text)
    invoice_number: Mapped[str | None] = mapped_column(String(60))
    invoice_key: Mapped[str | None] = mapped_column(String(60))
    contract_number: Mapped[str | None] = mapped_column(String(60))
    contract_key: Mapped[str | None] = mapped_column(String(60))
    received_amount: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0.00"))
    outstanding: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0.00"))
    # planned/partial/paid/cancelled
    status: Mapped[str] = mapped_column(String(20), default="planned")
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    # the due date a payment_overdue was published for: once per payment and due date
    overdue_notified_due: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)

    receipts: Mapped[list[Receipt]] = relationship(order_by="Receipt.id", viewonly=True)
    moves: Mapped[list[DueDateMove]] = relationship(order_by="DueDateMove.id", viewonly=True)


class DueDateMove(Base):
    """A due date moved (the client asked for more time): who, when and why."""

    __tablename__ = "due_date_moves"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("planned_payments.id"), index=True)
    old_due_date: Mapped[date] = mapped_column(Date)
    new_due_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    moved_by: Mapped[int | None] = mapped_column(Integer)
    moved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Receipt(Base):
    """Money actually received against a planned payment.  A correction or cancellation
    changes ``amount``/``status`` and is recorded in ``receipt_corrections``."""

    __tablename__ = "receipts"
    __table_args__ = (
        Index("uq_receipts_source_external_id", "source", "external_id", unique=True,
              postgresql_where=text("external_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    planned_payment_id: Mapped[int] = mapped_column(ForeignKey("planned_payments.id"), index=True)
    deal_id: Mapped[int] = mapped_column(BigInteger, index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    received_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(20), default="manual")  # manual/bank/online
    status: Mapped[str] = mapped_column(String(20), default="active", server_default="active")
    comment: Mapped[str | None] = mapped_column(Text)
    bank_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("bank_transactions.id"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(100))  # the online provider's id
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReceiptCorrection(Base):
    """An accountant's correction or cancellation of a receipt: the before and after."""

    __tablename__ = "receipt_corrections"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("receipts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # correction/cancellation
    old_amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    new_amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    old_received_on: Mapped[date] = mapped_column(Date)
    new_received_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# --- what other services told us (fed by their events) ------------------------------


class DealRef(Base):
    """The deals this service has heard of: client and manager, for matching and the
    per-manager forecast."""

    __tablename__ = "deal_refs"

    deal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    client_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    manager_id: Mapped[int | None] = mapped_column(Integer, index=True)
    status: Mapped[str | None] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ClientRef(Base):
    __tablename__ = "client_refs"

    client_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    inn: Mapped[str | None] = mapped_column(String(12), index=True)  # digits only
    manager_id: Mapped[int | None] = mapped_column(Integer)
    merged_into: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# --- bank and 1C feeds -----------------------------------------------------------------


class OwnAccount(Base):
    """Our own bank accounts: only credits to these are matched to payments."""

    __tablename__ = "own_accounts"

    account: Mapped[str] = mapped_column(String(34), primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ImportJob(Base):
    """One statement file to import (uploaded or dropped in the inbox folder), or a
    re-match of one account's transactions.  A worker holds the row lock (SKIP LOCKED)
    for the whole import, so a crashed worker's job is simply taken again."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # upload/inbox/rematch
    filename: Mapped[str] = mapped_column(Text)
    stored_name: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    format: Mapped[str | None] = mapped_column(String(20))
    account: Mapped[str | None] = mapped_column(String(34))  # rematch
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued/done/failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    error_location: Mapped[str | None] = mapped_column(Text)
    # what is wrong, in words the gateway translates: "statement.line.amount" with
    # {"line": 47, "field": "Сумма", "value": "12,3x"}
    error_key: Mapped[str | None] = mapped_column(Text)
    error_params: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


Index("ix_import_jobs_queued", ImportJob.id, postgresql_where=text("status = 'queued'"))


class ImportProgress(Base):
    """Written outside the import's transaction (autocommit) so the page sees it move."""

    __tablename__ = "import_progress"

    # no foreign key: the job row is locked by its worker, and a key check would wait on it
    job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    phase: Mapped[str] = mapped_column(String(20))  # reading/matching/done
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BankTransaction(Base):
    """One statement record, stored once whatever file brought it (``identity``).

    status: ignored (a debit or a reversal), foreign_account (a credit to an account not
    in our list), unmatched, review (a doubtful match waits for a person), matched (a
    receipt was recorded automatically), resolved (a person allocated it), dismissed
    (a person said it is not a client payment), new (only inside an import)."""

    __tablename__ = "bank_transactions"
    __table_args__ = (
        # (…, status, id): the matcher walks the new rows of an import (or an account) in
        # id order; without id it would re-read the rows it already moved on every batch
        Index("ix_bank_transactions_import_status", "import_id", "status", "id"),
        Index("ix_bank_transactions_account_status", "own_account", "status", "id"),
        Index("ix_bank_transactions_queue", "status", "id",
              postgresql_where=text("status IN ('review', 'unmatched')")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    identity: Mapped[str] = mapped_column(Text, unique=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id"))
    own_account: Mapped[str] = mapped_column(Text)
    booked_on: Mapped[date] = mapped_column(Date)
    number: Mapped[str] = mapped_column(Text, default="")
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3))
    direction: Mapped[str] = mapped_column(String(6))  # credit/debit
    reversal: Mapped[bool] = mapped_column(Boolean, default=False)
    payer_name: Mapped[str] = mapped_column(Text, default="")
    payer_inn: Mapped[str] = mapped_column(Text, default="")
    payer_account: Mapped[str] = mapped_column(Text, default="")
    payee_name: Mapped[str] = mapped_column(Text, default="")
    payee_inn: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    entry_ref: Mapped[str] = mapped_column(Text, default="")
    document_date: Mapped[date | None] = mapped_column(Date)
    location: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))
    score: Mapped[Decimal | None] = mapped_column(Numeric(4, 2))
    reasons: Mapped[list[str] | None] = mapped_column(JSONB)
    candidates: Mapped[list[int] | None] = mapped_column(JSONB)
    suggested_payment_id: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[int | None] = mapped_column(Integer)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
