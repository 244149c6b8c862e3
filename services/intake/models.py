"""Tables of the intake database (crm_intake): the inbox of new enquiries, the website
forms and API keys they come through, and the counters that keep floods out."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
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


class Lead(Base):
    """One enquiry, as it arrived.  ``status``: new → accepting (the accept saga runs) →
    accepted | attached; or rejected / spam.  ``hidden`` leads (a bot's form submission)
    are kept as evidence but never listed."""

    __tablename__ = "leads"
    __table_args__ = (
        Index("uq_leads_source_ref", "source", "source_ref", "external_id", unique=True,
              postgresql_where=text("external_id IS NOT NULL")),
        Index("ix_leads_inbox", "status", "id", postgresql_where=text("NOT hidden")),
        Index("ix_leads_due", "respond_by",
              postgresql_where=text("status = 'new' AND escalated_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # form/api/email/call/questionnaire
    source_ref: Mapped[str] = mapped_column(String(100), server_default="")  # form/key id
    source_name: Mapped[str] = mapped_column(String(200), server_default="")
    external_id: Mapped[str | None] = mapped_column(String(200))  # the source's own id
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                  server_default=func.now())
    name: Mapped[str] = mapped_column(String(300), server_default="")
    phone: Mapped[str] = mapped_column(String(50), server_default="")
    phone_e164: Mapped[str | None] = mapped_column(String(40), index=True)
    email: Mapped[str] = mapped_column(String(320), server_default="")
    company: Mapped[str] = mapped_column(String(300), server_default="")
    inn: Mapped[str] = mapped_column(String(12), server_default="")
    message: Mapped[str] = mapped_column(Text, server_default="")
    extra: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    utm: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    page_url: Mapped[str] = mapped_column(String(2000), server_default="")
    referrer: Mapped[str] = mapped_column(String(2000), server_default="")
    consent_version: Mapped[int | None] = mapped_column(Integer)
    consent_text: Mapped[str | None] = mapped_column(Text)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), server_default="new")
    hidden: Mapped[bool] = mapped_column(Boolean, server_default="false")
    reject_reason: Mapped[str | None] = mapped_column(String(200))
    duplicates: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    assignee_id: Mapped[int | None] = mapped_column(Integer, index=True)
    respond_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    client_id: Mapped[int | None] = mapped_column(BigInteger)
    contact_id: Mapped[int | None] = mapped_column(BigInteger)
    deal_id: Mapped[int | None] = mapped_column(BigInteger)
    decided_by: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    mail_message_id: Mapped[str | None] = mapped_column(String(998))
    accept_plan: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    accept_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    accept_error: Mapped[str | None] = mapped_column(Text)


class Form(Base):
    """A website form: its fields with their mapping to the lead, its consent text
    (each wording a new version), and who its leads go to."""

    __tablename__ = "forms"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    consent_text: Mapped[str] = mapped_column(Text)
    consent_version: Mapped[int] = mapped_column(Integer, server_default="1")
    assignee_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default="{}")
    min_fill_seconds: Mapped[int] = mapped_column(Integer, server_default="3")
    allowed_origins: Mapped[list[str]] = mapped_column(ARRAY(String(300)), server_default="{}")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ConsentVersion(Base):
    """Every wording of a form's consent, so a lead's version number always names the
    exact text the person agreed to."""

    __tablename__ = "consent_versions"

    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id", ondelete="CASCADE"),
                                         primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiKey(Base):
    """A lead source's key: only its SHA-256 is kept (the key is shown once)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(12))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    assignee_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default="{}")
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RateCounter(Base):
    """Hits per key (``ip:<addr>``, ``form:<id>``, ``mail:<sender>``) per fixed window.
    UNLOGGED: a hit's commit waits for no disk, and a crash empties the table — a rate
    limit that forgets a minute's hits is harmless."""

    __tablename__ = "rate_counters"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, server_default="0")


class MailThread(Base):
    """Message-IDs seen or sent in a deal's correspondence, so a reply threads back."""

    __tablename__ = "mail_threads"
    __table_args__ = (Index("ix_mail_threads_outbound", "created_at",
                            postgresql_where=text("direction = 'out' AND status = 'queued'")),)

    message_id: Mapped[str] = mapped_column(String(998), primary_key=True)
    deal_id: Mapped[int] = mapped_column(BigInteger)
    direction: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10), server_default="received")
    client_message_id: Mapped[int | None] = mapped_column(BigInteger)
    client_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Setting(Base):
    """Inbox settings an administrator changes: duty managers, heads, response time,
    mail flood limits, the round-robin cursor."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)


class Mailbox(Base):
    """An IMAP mailbox intake reads: the company's (``user_id`` null) or one manager's
    (its mail is assigned to that manager).  The password is kept encrypted
    (``password_enc``, Fernet under ``MAILBOX_SECRET``) and never answered back.
    ``lease_until``: the replica polling it now; ``last_uid`` under ``uidvalidity``: how
    far the folder has been read."""

    __tablename__ = "mailboxes"
    __table_args__ = (Index("ix_mailboxes_due", "next_poll_at",
                            postgresql_where=text("active")),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(10))  # ssl / starttls / none
    login: Mapped[str] = mapped_column(String(320))
    password_enc: Mapped[str] = mapped_column(Text)
    folder: Mapped[str] = mapped_column(String(200), server_default="INBOX")
    move_to: Mapped[str | None] = mapped_column(String(200))
    interval_seconds: Mapped[int] = mapped_column(Integer, server_default="60")
    user_id: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int | None] = mapped_column(BigInteger)
    next_poll_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                   server_default=func.now())
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_polled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    taken: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MailboxMessage(Base):
    """A message of a mailbox already handled (committed with its effect in one
    transaction), by its UID: a poll that died before flagging it on the server only
    flags it again, never makes a second entry."""

    __tablename__ = "mailbox_messages"

    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"),
                                            primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    uid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(998), server_default="")
    outcome: Mapped[str] = mapped_column(String(20))
    flagged: Mapped[bool] = mapped_column(Boolean, server_default="false")
    handled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
