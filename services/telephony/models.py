"""Tables of the telephony database (crm_telephony)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import NAMING
from services.kit.messaging import messaging_tables


class Base(DeclarativeBase):
    """This database's tables (a class statement, so type checkers see the models)."""

    metadata = MetaData(naming_convention=NAMING)


metadata = Base.metadata
outbox, inbox = messaging_tables(metadata)


class Call(Base):
    """One call, as the PBX told it (possibly in pieces, possibly out of order).

    ``status``: ``new`` (only a fragment such as a recording notice is known), ``live``
    (started, not ended), ``finished``.  ``revision`` grows with every change, so
    consumers of ``call_updated`` can ignore older news.
    """

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("provider", "provider_call_id"),
        Index("ix_calls_deal_ids", "deal_ids", postgresql_using="gin"),
        Index("ix_calls_recording_due", "recording_next_at",
              postgresql_where=text("recording_status = 'pending'")),
        Index("ix_calls_unpublished", "id", postgresql_where=text(
            "status = 'finished' AND NOT finished_published")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_call_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), server_default="finished")
    direction: Mapped[str | None] = mapped_column(String(10))
    our_line: Mapped[str | None] = mapped_column(String(50))
    other_number: Mapped[str | None] = mapped_column(String(50))
    other_e164: Mapped[str | None] = mapped_column(String(40), index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_seconds: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(20))
    recording_ref: Mapped[str | None] = mapped_column(String(500))
    # none | pending | stored | failed
    recording_status: Mapped[str] = mapped_column(String(10), server_default="none")
    recording_path: Mapped[str | None] = mapped_column(String(300))
    recording_type: Mapped[str | None] = mapped_column(String(50))
    recording_size: Mapped[int | None] = mapped_column(BigInteger)
    recording_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    recording_next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recording_error: Mapped[str | None] = mapped_column(Text)
    contact_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    contact_name: Mapped[str | None] = mapped_column(String(300))
    client_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    deal_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), default=list)
    attributed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attribution_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    started_published: Mapped[bool] = mapped_column(Boolean, server_default="false")
    finished_published: Mapped[bool] = mapped_column(Boolean, server_default="false")
    revision: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookLog(Base):
    """Every webhook a PBX sent us: accepted, ignored, refused (bad signature) or invalid.

    ``digest`` identifies the exact payload; an accepted or ignored payload seen again is a
    repeat and changes nothing.  Refusals are all kept (each is a possible attack).
    """

    __tablename__ = "webhook_log"
    __table_args__ = (
        Index("uq_webhook_log_seen", "provider", "digest", unique=True,
              postgresql_where=text("outcome IN ('accepted', 'ignored')")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    event: Mapped[str] = mapped_column(String(100))
    digest: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    provider_call_id: Mapped[str | None] = mapped_column(String(200))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                  server_default=func.now(), index=True)
