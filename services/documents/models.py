"""Tables of the documents database (crm_documents)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import NAMING
from services.kit.messaging import messaging_tables


class Base(DeclarativeBase):
    """This database's tables (a class statement, so type checkers see the models)."""

    metadata = MetaData(naming_convention=NAMING)


metadata = Base.metadata
outbox, inbox = messaging_tables(metadata)


class Template(Base):
    """An HTML template of one kind, optionally for one deal type (the process's documents).
    ``version`` grows with each save; a document records the version it was made from."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(200))
    deal_type_id: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    # "html": ``body`` is the template; "docx": ``docx`` is the uploaded Word file and
    # ``body`` its text (one line per paragraph), for the admin page and the checker
    format: Mapped[str] = mapped_column(String(10), default="html", server_default="html")
    docx: Mapped[bytes | None] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    updated_by: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


class Company(Base):
    """Our own requisites (one row, id 1): the supplier on every document."""

    __tablename__ = "company"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    updated_by: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


class Counter(Base):
    """The last number given per kind and year; locked FOR UPDATE by the transaction that
    saves the document, so numbers have neither gaps nor doubles."""

    __tablename__ = "counters"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Document(Base):
    """A generated document with its exact PDF and its client link.

    ``status``: ``new`` → ``viewed`` → ``approved`` / ``declined`` / ``signed``.  A signed
    document's ``pdf`` never changes again (its SHA-256 is in ``signed_sha256``).
    """

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("kind", "year", "number"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    year: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    doc_date: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deal_id: Mapped[int] = mapped_column(BigInteger, index=True)
    deal_name: Mapped[str | None] = mapped_column(String(300))
    client_id: Mapped[int | None] = mapped_column(BigInteger)
    manager_id: Mapped[int | None] = mapped_column(Integer)
    contact: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id"))
    template_version: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    html: Mapped[str] = mapped_column(Text)
    # a DOCX template's document is its DOCX, and a PDF only where LibreOffice is
    # installed; ``pdf_sha256`` is the hash of the PDF, else of the DOCX
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    docx: Mapped[bytes | None] = mapped_column(LargeBinary)
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="new")
    token: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    views: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decline_comment: Mapped[str | None] = mapped_column(Text)
    # an invoice is issued for one planned payment of the deal (payments' id): its
    # receipts, online or not, pay the invoice
    planned_payment_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    paid_amount: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0"),
                                                 server_default="0")
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    online_payment: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    signed_sha256: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


class LinkAction(Base):
    """What happened on a client link: viewed, approved, declined, code_sent, signed —
    who (as far as a link can tell), when, from which IP and browser."""

    __tablename__ = "link_actions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"),
                                             index=True)
    action: Mapped[str] = mapped_column(String(20))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SignatureCode(Base):
    """A one-time code for a simple electronic signature: only its salted hash is kept."""

    __tablename__ = "signature_codes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"),
                                             index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    salt: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class QuestionnaireTemplate(Base):
    """A questionnaire's questions (``questionnaires.clean_fields``), built by an admin."""

    __tablename__ = "questionnaire_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    updated_by: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


class Questionnaire(Base):
    """One questionnaire sent from a deal: its questions as they were when it was made,
    the client's draft as they type, then the submitted answers (read-only from then on)."""

    __tablename__ = "questionnaires"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("questionnaire_templates.id"))
    name: Mapped[str] = mapped_column(String(200))
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    deal_id: Mapped[int] = mapped_column(BigInteger, index=True)
    deal_name: Mapped[str | None] = mapped_column(String(300))
    client_id: Mapped[int | None] = mapped_column(BigInteger)
    manager_id: Mapped[int | None] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="new")  # new|draft|submitted
    draft: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    answers: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    draft_saved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
