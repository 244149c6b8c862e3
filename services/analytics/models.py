"""Tables of the analytics database (crm_analytics): a read model built only from the
events deals and payments publish (and, to start on an existing installation, from the
deals service's own history by RPC)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
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
        Index("ix_deals_client", "client_id"),
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
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now(), onupdate=func.now())
    # The deal's transitions summed up (``projection.SUMMARIZE`` rewrites them from the
    # transitions whenever a deal's transitions change), so that a funnel slice is a few
    # aggregate queries over one row per deal instead of a walk over every move:
    # ``path``: the status of each move in order; ``seconds_codes``/``seconds_values``:
    # each status in it with the seconds spent there on finished visits (the current visit,
    # since ``last_at``, is added when asked); ``last_loss_reason``: the last move's.
    path: Mapped[list[str] | None] = mapped_column(ARRAY(String(50)))
    seconds_codes: Mapped[list[str] | None] = mapped_column(ARRAY(String(50)))
    seconds_values: Mapped[list[float] | None] = mapped_column(ARRAY(Double))
    last_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_loss_reason: Mapped[str | None] = mapped_column(String(200))


class Receipt(Base):
    """Money received on a deal (payments.payment_received): the revenue figure."""

    __tablename__ = "receipts"

    receipt_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int] = mapped_column(BigInteger, index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    received_on: Mapped[str | None] = mapped_column(Text)


class DealCount(Base):
    """How many deals and how much sit in each status now, by stage, manager and type
    (-1: none), kept by triggers on ``deals`` (migration c3f1a7e2b9d4): what changed is
    appended to ``deal_count_moves`` and folded in here by ``projection.compact_counts``."""

    __tablename__ = "deal_counts"

    status: Mapped[str] = mapped_column(String(50), primary_key=True)
    stage: Mapped[str] = mapped_column(String(50), primary_key=True)
    manager_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    type_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    deals: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(MONEY)


deal_count_moves = Table(
    "deal_count_moves", metadata,
    Column("status", String(50), nullable=False), Column("stage", String(50), nullable=False),
    Column("manager_key", Integer, nullable=False), Column("type_key", Integer, nullable=False),
    Column("deals", Integer, nullable=False), Column("amount", MONEY, nullable=False))
