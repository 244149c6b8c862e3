"""Tables of the deals database (crm_deals)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    Sequence,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
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
order_numbers = Sequence("order_numbers", metadata=metadata)

MONEY = Numeric(18, 2)


class Edited:
    """Who last changed a reference row, and when (U2)."""

    updated_by: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())


class Status(Edited, Base):
    """The common statuses every deal type's stages map to (a reference list)."""

    __tablename__ = "statuses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    color: Mapped[str] = mapped_column(String(20), default="#888888")
    kind: Mapped[str] = mapped_column(String(10), default="open")  # open / won / lost


class LossReason(Edited, Base):
    __tablename__ = "loss_reasons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    # a reason in use is retired, not deleted, so lost deals keep theirs
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class DealType(Edited, Base):
    __tablename__ = "deal_types"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    simple: Mapped[bool] = mapped_column(Boolean, default=True)
    documents: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    stages: Mapped[list[Stage]] = relationship(order_by="Stage.position",
                                               cascade="all, delete-orphan")


class Stage(Base):
    """One step of a deal type's process, mapped to one common status."""

    __tablename__ = "stages"
    __table_args__ = (UniqueConstraint("type_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("deal_types.id", ondelete="CASCADE"),
                                         index=True)
    code: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    status_id: Mapped[int] = mapped_column(ForeignKey("statuses.id"), index=True)
    tasks: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    documents: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list)

    status: Mapped[Status] = relationship(lazy="joined")


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (
        # the board: counts, sums and pages per status, for one manager or for everyone
        Index("ix_deals_manager_status", "manager_id", "status_id", "id",
              postgresql_include=["amount"]),
        Index("ix_deals_status", "status_id", "id", postgresql_include=["amount"]),
        # text filter: a substring of the deal's or its client's name (pg_trgm)
        Index("ix_deals_search", text("(name || ' ' || client_name) gin_trgm_ops"),
              postgresql_using="gin"),
        # the table sorted by a column: a keyset page over (column, id) reads one range
        # instead of sorting every deal (bench/deals.py: ~1 s -> ~10 ms at 1,000,000)
        Index("ix_deals_sort_name", "name", "id"),
        Index("ix_deals_sort_amount", "amount", "id"),
        Index("ix_deals_sort_updated", "updated_at", "id"),
        Index("ix_deals_sort_planned_close", "planned_close_on", "id"),
        Index("ix_deals_sort_manager", "manager_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[int] = mapped_column(BigInteger, index=True)
    # a copy of the client's name, so cards, sorting and the text filter need no other
    # service; refreshed when the deal moves to another client (or a merge)
    client_name: Mapped[str] = mapped_column(String(500), default="")
    status_id: Mapped[int] = mapped_column(ForeignKey("statuses.id"))
    type_id: Mapped[int | None] = mapped_column(ForeignKey("deal_types.id"), index=True)
    stage_id: Mapped[int | None] = mapped_column(ForeignKey("stages.id"), index=True)
    manager_id: Mapped[int | None] = mapped_column(Integer)
    # the amount cards show and columns sum: the payment plan once there is one, else
    # the expected amount (domain.effective_amount)
    amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    expected_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    budget: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    paid: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    outstanding: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    # budget_changed events carry a per-deal revision; an older one arriving late is ignored
    budget_revision: Mapped[int] = mapped_column(Integer, default=0)
    loss_reason_id: Mapped[int | None] = mapped_column(ForeignKey("loss_reasons.id"))
    loss_comment: Mapped[str | None] = mapped_column(Text)
    # due time of the nearest open reminder (None: "No tasks"), kept with the reminders
    next_reminder_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 index=True)
    updated_by: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # the win probability a manager set by hand (percent; None: only the estimate counts)
    probability: Mapped[int | None] = mapped_column(SmallInteger)
    # the day the manager plans to close it (the forecast's month; red once passed)
    planned_close_on: Mapped[date | None] = mapped_column(Date)
    # how the deal arrived (domain.SOURCES), set once at creation; the detail holds the
    # web form's UTM tags, page and lead (domain.SOURCE_DETAIL_KEYS)
    source: Mapped[str] = mapped_column(String(20), default="manual", server_default="manual")
    source_detail: Mapped[dict[str, str] | None] = mapped_column(JSONB)

    status: Mapped[Status] = relationship(lazy="joined")
    stage: Mapped[Stage | None] = relationship(lazy="joined")
    contacts: Mapped[list[DealContact]] = relationship(order_by="DealContact.id",
                                                       cascade="all, delete-orphan")


class DealTotal(Base):
    """Deals and their amount per status and manager (``manager_key`` 0: none), kept by
    triggers on ``deals`` (migration 7d1f2a9c4b10): the board's column totals without
    counting every deal."""

    __tablename__ = "deal_totals"

    status_id: Mapped[int] = mapped_column(ForeignKey("statuses.id", ondelete="CASCADE"),
                                           primary_key=True)
    manager_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    deals: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(MONEY)


class ReferenceRevision(Base):
    """One row: a number bumped by triggers (migration e4b7c2a91f35) whenever statuses,
    process types, stages or loss reasons change, so a reader holding the lists can tell
    whether they are still current without reading them."""

    __tablename__ = "reference_revision"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger)


class DealContact(Base):
    """A contact on a deal: a copy of the client's contact, kept when the client changes."""

    __tablename__ = "deal_contacts"
    __table_args__ = (UniqueConstraint("deal_id", "contact_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(300))
    position: Mapped[str | None] = mapped_column(String(300))
    phones: Mapped[str] = mapped_column(Text, default="")
    emails: Mapped[str] = mapped_column(Text, default="")
    is_main: Mapped[bool] = mapped_column(Boolean, default=False)
    added_by: Mapped[int | None] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DealHistory(Base):
    __tablename__ = "deal_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    field: Mapped[str] = mapped_column(String(100))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Reminder(Base):
    """A task with a due time, for a manager (``assignee_id``) or a role (D9)."""

    __tablename__ = "reminders"
    __table_args__ = (
        # what the due-reminder timer scans: open, due, not yet announced
        Index("ix_reminders_due", "due_at",
              postgresql_where=text("completed_at IS NULL AND due_emitted_at IS NULL")),
        Index("ix_reminders_assignee_open", "assignee_id", "due_at",
              postgresql_where=text("completed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[int] = mapped_column(BigInteger, index=True)
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    assignee_role: Mapped[str | None] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(20), default="manual")  # manual/stage/call
    stage_id: Mapped[int | None] = mapped_column(Integer)
    # a reminder made by an event (a missed call) is made once however often it arrives
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_by: Mapped[int | None] = mapped_column(Integer)
    due_emitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FeedEntry(Base):
    """A deal's own feed lines: comments (with files), completed reminders, receipts."""

    __tablename__ = "feed_entries"
    __table_args__ = (UniqueConstraint("deal_id", "kind", "ref"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # comment / reminder_done / receipt
    text: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # what the line is about (a reminder, a receipt): one line per thing
    ref: Mapped[str | None] = mapped_column(String(100))
    author_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Audited:
    """Who made and last changed a row, when, and its version (stale writes refused)."""

    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())
    version: Mapped[int] = mapped_column(Integer, default=1)


class Order(Audited, Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    order_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="new")
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    comment: Mapped[str] = mapped_column(Text, default="")

    lines: Mapped[list[OrderLine]] = relationship(order_by="OrderLine.position",
                                                  cascade="all, delete-orphan", lazy="selectin")


class LineColumns:
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10), default="goods")
    name: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 3))
    unit_price: Mapped[Decimal] = mapped_column(MONEY)
    discount: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    # picked from the catalogue (null: a free-text line); the product line is copied so
    # that analytics groups sales by it even after the catalogue changes
    catalogue_id: Mapped[int | None] = mapped_column(BigInteger)
    product_line: Mapped[str | None] = mapped_column(String(200))


class OrderLine(LineColumns, Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"),
                                          index=True)


class Calculation(Base):
    """The deal's saved cost calculation (D11): one per deal, replaced on save."""

    __tablename__ = "calculations"

    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"),
                                         primary_key=True)
    total: Mapped[Decimal] = mapped_column(MONEY)
    saved_by: Mapped[int | None] = mapped_column(Integer)
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    plan_created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)

    lines: Mapped[list[CalculationLine]] = relationship(order_by="CalculationLine.position",
                                                        cascade="all, delete-orphan",
                                                        lazy="selectin")


class CalculationLine(LineColumns, Base):
    __tablename__ = "calculation_lines"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("calculations.deal_id", ondelete="CASCADE"),
                                         index=True)


class Party(Base):
    """The deal's environment (D12): a competitor, subcontractor or influencer."""

    __tablename__ = "deal_parties"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    client_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(500))
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Product(Audited, Base):
    """A catalogue item (goods or a service) the calculator and orders pick from; retired
    (``active`` false), never deleted, since saved lines refer to it."""

    __tablename__ = "products"
    __table_args__ = (
        Index("ix_products_article", "article", unique=True,
              postgresql_where=text("article IS NOT NULL")),
        # search-as-you-type: a substring of the name or the article (pg_trgm)
        Index("ix_products_search",
              text("(lower(name) || ' ' || lower(coalesce(article, ''))) gin_trgm_ops"),
              postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    article: Mapped[str | None] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(20), default="шт")
    price: Mapped[Decimal] = mapped_column(MONEY)
    vat_rate: Mapped[str] = mapped_column(String(4), default="none")
    product_line: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(10), default="goods")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
