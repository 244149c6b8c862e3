"""Tables of the analytics database (crm_analytics): a read model built only from the
events deals and payments publish (and, to start on an existing installation, from the
deals service's own history by RPC)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, DateTime, Index, Integer, Numeric, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from services.kit.db import make_base
from services.kit.messaging import messaging_tables

Base = make_base()
metadata = Base.metadata
outbox, inbox = messaging_tables(metadata)

MONEY = Numeric(18, 2)


class Transition(Base):
    """One move of a deal into a status (append-only): the source of every figure.

    ``seq`` orders a deal's moves: the deal's version after the move for live events
    (1 is the creation), or the move's ordinal when replayed by the rebuild (always below
    the versions that come after it, see ``DealState.rebuilt_version``)."""

    __tablename__ = "transitions"
    __table_args__ = (Index("ix_transitions_at", "at"),)

    deal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_status: Mapped[str | None] = mapped_column(String(50))
    to_status: Mapped[str] = mapped_column(String(50))
    from_stage: Mapped[str | None] = mapped_column(String(50))
    to_stage: Mapped[str | None] = mapped_column(String(50))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    manager_id: Mapped[int | None] = mapped_column(Integer)
    type_id: Mapped[int | None] = mapped_column(Integer)
    client_id: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    loss_reason_id: Mapped[int | None] = mapped_column(Integer)
    loss_reason: Mapped[str | None] = mapped_column(String(200))


class DealState(Base):
    """A deal as it is now, for slicing and the deal lists; ``version`` is the deal's
    version of the newest event applied (an older one changes nothing here)."""

    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_created", "created_at"),
        Index("ix_deals_closed", "closed_at"),
        Index("ix_deals_manager", "manager_id"),
    )

    deal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    # events up to this version are already in the replayed history: skipped
    rebuilt_version: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(500), default="")
    client_id: Mapped[int | None] = mapped_column(BigInteger)
    client_name: Mapped[str] = mapped_column(String(500), default="")
    manager_id: Mapped[int | None] = mapped_column(Integer)
    type_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str | None] = mapped_column(String(50))
    stage: Mapped[str | None] = mapped_column(String(50))
    amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    entered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    loss_reason: Mapped[str | None] = mapped_column(String(200))
    # the client's group of companies, kept by a trigger from client_group_members
    # (migration c5f1a2b3d4e6), so every writer of this table gets it without a change
    client_group_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now(), onupdate=func.now())


class Receipt(Base):
    """Money received on a deal (payments.payment_received): the revenue figure."""

    __tablename__ = "receipts"

    receipt_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int] = mapped_column(BigInteger, index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    received_on: Mapped[str | None] = mapped_column(Text)


class RfmScore(Base):
    """Each paying client's RFM scores and segment as of the last recomputation."""

    __tablename__ = "rfm_scores"
    __table_args__ = (Index("ix_rfm_scores_segment", "segment", "client_id"),)

    client_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    recency_days: Mapped[int] = mapped_column(Integer)
    payments: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    r: Mapped[int] = mapped_column(Integer)
    f: Mapped[int] = mapped_column(Integer)
    m: Mapped[int] = mapped_column(Integer)
    segment: Mapped[str] = mapped_column(String(20))
    last_paid_on: Mapped[date | None] = mapped_column(Date)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RfmHistory(Base):
    """A client's segment moves (append-only): one row each time a recomputation moved it."""

    __tablename__ = "rfm_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    client_id: Mapped[int] = mapped_column(BigInteger, index=True)
    previous: Mapped[str | None] = mapped_column(String(20))
    segment: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ScheduledJob(Base):
    """A periodic job claimed with ``FOR UPDATE SKIP LOCKED``: with several replicas, one
    runs it and the others skip it."""

    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_result: Mapped[str] = mapped_column(Text, default="")


class DealLine(Base):
    """A deal's priced lines with their product line (deals.calculation_saved): what the
    BCG matrix groups sales by.  ``version`` is the calculation's: an older event arriving
    late changes nothing."""

    __tablename__ = "deal_lines"

    deal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    product_line: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(MONEY)


class ClientGroupMember(Base):
    """Which group of companies each client is in (clients.client_group_changed), so the
    funnel, performance and RFM can be sliced by group; ``version`` is the client's."""

    __tablename__ = "client_group_members"
    __table_args__ = (Index("ix_client_group_members_group", "client_group_id"),)

    client_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    client_group_id: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=0)
