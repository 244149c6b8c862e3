"""Tables of the deals database (crm_deals)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.kit.db import make_base
from services.kit.messaging import messaging_tables

Base = make_base()
metadata = Base.metadata
outbox, inbox = messaging_tables(metadata)


class Status(Base):
    """The common statuses every deal type's stages map to (a reference list)."""

    __tablename__ = "statuses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    color: Mapped[str] = mapped_column(String(20), default="#888888")
    kind: Mapped[str] = mapped_column(String(10), default="open")  # open / won / lost


class Deal(Base):
    __tablename__ = "deals"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[int] = mapped_column(BigInteger, index=True)
    status_id: Mapped[int] = mapped_column(ForeignKey("statuses.id"), index=True)
    manager_id: Mapped[int | None] = mapped_column(Integer, index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    # budget_changed events carry a per-deal revision; an older one arriving late is ignored
    budget_revision: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)

    status: Mapped[Status] = relationship(lazy="joined")
    contacts: Mapped[list[DealContact]] = relationship(order_by="DealContact.id",
                                                         cascade="all, delete-orphan")


class DealContact(Base):
    """A contact on a deal: a copy of the client's contact, kept when the client changes."""

    __tablename__ = "deal_contacts"
    __table_args__ = (UniqueConstraint("deal_id", "contact_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(300))
    phones: Mapped[str] = mapped_column(Text, default="")
    is_main: Mapped[bool] = mapped_column(Boolean, default=False)


class DealHistory(Base):
    __tablename__ = "deal_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    field: Mapped[str] = mapped_column(String(100))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
