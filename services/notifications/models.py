"""Tables of the notifications database (crm_notifications)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import NAMING
from services.kit.messaging import messaging_tables


class Base(DeclarativeBase):
    """This database's tables (a class statement, so type checkers see the models)."""

    metadata = MetaData(naming_convention=NAMING)


metadata = Base.metadata
outbox, inbox = messaging_tables(metadata)


class Notification(Base):
    """An in-app notification; ``dedup_key`` makes one event notify a user once."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("user_id", "dedup_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(500))
    deal_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    dedup_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Recipient(Base):
    """How to reach a user (set from the profile page and the demo seed, over RPC)."""

    __tablename__ = "recipients"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    lang: Mapped[str] = mapped_column(String(5), server_default="ru")
    telegram_chat_id: Mapped[str | None] = mapped_column(String(40))
    telegram_code: Mapped[str | None] = mapped_column(String(64), unique=True)
    telegram_code_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Preference(Base):
    """Which channels a user wants for one kind of event (no row: the defaults)."""

    __tablename__ = "preferences"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(50), primary_key=True)
    channels: Mapped[list[str]] = mapped_column(ARRAY(String(20)))


class ClientMessage(Base):
    """A message a manager sent to a client's contact (N2); its delivery is a row of
    ``deliveries``.  ``request_id`` makes a double-submitted form send once."""

    __tablename__ = "client_messages"
    __table_args__ = (UniqueConstraint("client_id", "request_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    client_id: Mapped[int] = mapped_column(BigInteger, index=True)
    contact_id: Mapped[int] = mapped_column(BigInteger)
    contact_name: Mapped[str | None] = mapped_column(String(300))
    user_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Delivery(Base):
    """One message to one recipient over one channel: the unit that is sent, retried and
    logged.  Unique per (source, recipient, channel), so an event applied twice — or a
    consumer re-run after a crash — can never make a second delivery.

    ``status``: pending → sending → sent; or → retrying → sending ...; or failed (after
    the last try, or refused for good, or interrupted mid-send on a channel where a repeat
    could duplicate); skipped (nothing to send to: no address, channel not configured).
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("source_key", "recipient_key", "channel"),
        Index("ix_deliveries_due", "next_attempt_at",
              postgresql_where=text("status IN ('pending', 'retrying')")),
        Index("ix_deliveries_sending", "lease_until", postgresql_where=text("status = 'sending'")),
        Index("ix_deliveries_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(50))
    recipient_key: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    client_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("client_messages.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DeliveryAttempt(Base):
    """The log: every try of every delivery, when and with what result."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"),
                                             index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # ok | retryable | permanent | interrupted | manual (an administrator asked again)
    outcome: Mapped[str | None] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(Text)
    by_user_id: Mapped[int | None] = mapped_column(Integer)


class State(Base):
    """Small named values the service keeps (the Telegram updates offset)."""

    __tablename__ = "state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)


class DealManager(Base):
    """Who manages which deal, projected from the deals service's own events
    (``deal_created``, ``deal_updated``), so telling a deal's manager needs no question to
    deals on the hot path; a deal not seen yet is asked for once and remembered."""

    __tablename__ = "deal_managers"

    deal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    manager_id: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(500), default="")
    version: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
