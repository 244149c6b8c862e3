"""Tables of the clients database (crm_clients)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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

# "Client #N" numbers come from a sequence: never repeated, even under concurrent creation.
client_number_seq = Sequence("client_number_seq", metadata=metadata)


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, client_number_seq, unique=True,
                                        server_default=client_number_seq.next_value())
    kind: Mapped[str] = mapped_column(String(20), default="legal")
    name: Mapped[str] = mapped_column(String(500))
    # the name as the list searches and sorts it (domain.listing.search_text)
    search_name: Mapped[str] = mapped_column(Text, default="", server_default="")
    # its every one- and two-character part, kept by the database (migration c7e2f91a4b58):
    # a fragment that short is looked up here, where trigrams cannot help
    search_grams: Mapped[list[str]] = mapped_column(
        ARRAY(Text), Computed("client_search_grams(search_name)", persisted=True))
    inn: Mapped[str | None] = mapped_column(String(12))
    requisites: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    address: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(String(200))
    website: Mapped[str | None] = mapped_column(String(500))
    manager_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())
    updated_by: Mapped[int | None] = mapped_column(Integer)
    merged_into: Mapped[int | None] = mapped_column(BigInteger)
    # the group of companies (holding) it belongs to
    client_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("client_groups.id", ondelete="SET NULL"), index=True)
    # the latest comment, call or completed reminder (C6), from comments and events
    last_contact_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # what the list shows and sorts by in its phone and e-mail columns: the first contact's
    # first, else a private person's own (kept by store.refresh_reach)
    main_phone: Mapped[str | None] = mapped_column(String(40))
    main_email: Mapped[str | None] = mapped_column(String(320))
    # the RFM segment analytics last announced (client_segments_changed) and when it
    # computed it: newer computations win, whatever order the events arrive in
    rfm_segment: Mapped[str | None] = mapped_column(String(32))
    rfm_computed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)

    contacts: Mapped[list[Contact]] = relationship(back_populates="client",
                                                     order_by="Contact.id")

    __table_args__ = (
        Index("ix_clients_name_lower", func.lower(name)),
        # substring search in any case and script (pg_trgm), and paging in name order
        Index("ix_clients_search_name_trgm", search_name, postgresql_using="gin",
              postgresql_ops={"search_name": "gin_trgm_ops"}),
        # live clients in name order: a page of a common fragment is read inside it
        Index("ix_clients_live_search_name", search_name, id,
              postgresql_where=text("merged_into IS NULL")),
        Index("ix_clients_search_grams", search_grams, postgresql_using="gin"),
        Index("ix_clients_created_at", created_at),
        # equality and prefix ("7707%") lookups; the database collation is not "C"
        Index("ix_clients_inn_pattern", inn, postgresql_ops={"inn": "varchar_pattern_ops"}),
        # a segment's page in name order read off one index (live clients only)
        Index("ix_clients_rfm_segment_name", rfm_segment, search_name, id,
              postgresql_where=text("merged_into IS NULL AND rfm_segment IS NOT NULL")),
    )


# A private person's own phone is one of his requisites, searched like contacts' phones.
person_phone = Client.requisites["phone"].astext
Index("ix_clients_person_phone_trgm", person_phone.label("person_phone"),
      postgresql_using="gin", postgresql_ops={"person_phone": "gin_trgm_ops"})
Index("ix_clients_city_trgm", func.lower(Client.city).label("city_lower"),
      postgresql_using="gin", postgresql_ops={"city_lower": "gin_trgm_ops"})


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    position: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[int | None] = mapped_column(Integer)

    client: Mapped[Client] = relationship(back_populates="contacts")
    phones: Mapped[list[ContactPhone]] = relationship(order_by="ContactPhone.id",
                                                        cascade="all, delete-orphan")
    emails: Mapped[list[ContactEmail]] = relationship(order_by="ContactEmail.id",
                                                        cascade="all, delete-orphan")

    # the header's global search finds contacts by any part of their name
    __table_args__ = (Index("ix_contacts_name_trgm", text("lower(name) gin_trgm_ops"),
                            postgresql_using="gin"),)


class ContactPhone(Base):
    __tablename__ = "contact_phones"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"),
                                            index=True)
    e164: Mapped[str] = mapped_column(String(40))

    __table_args__ = (
        # a whole number (and its ";ext=" forms) by prefix, a fragment by trigrams
        Index("ix_contact_phones_e164_pattern", e164,
              postgresql_ops={"e164": "varchar_pattern_ops"}),
        Index("ix_contact_phones_e164_trgm", e164, postgresql_using="gin",
              postgresql_ops={"e164": "gin_trgm_ops"}),
    )


class ContactEmail(Base):
    __tablename__ = "contact_emails"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"),
                                            index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)


class ClientHistory(Base):
    """Field-level change history: who changed which field, from what, to what, when."""

    __tablename__ = "client_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    field: Mapped[str] = mapped_column(String(100))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(Integer)
    # ui | api | import | merge | event: where the change came from
    source: Mapped[str] = mapped_column(String(20), default="ui")
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # the contact a "contact..." line is about
    contact_id: Mapped[int | None] = mapped_column(BigInteger)


class ClientComment(Base):
    __tablename__ = "client_comments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ClientReminder(Base):
    """The deals service's reminders about a client, as its events told us (C6): only
    whether each is still open.  Keyed by the reminder's id, so events applied in any
    order (completed before created) end in the same state."""

    __tablename__ = "client_reminders"

    reminder_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[int] = mapped_column(BigInteger)
    deal_id: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_client_reminders_open", client_id,
              postgresql_where=text("completed_at IS NULL")),
    )


class ClientImport(Base):
    """An uploaded file between its preview and its import: the person confirms what they
    saw, and the same file is never imported twice."""

    __tablename__ = "client_imports"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    filename: Mapped[str | None] = mapped_column(String(300))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(20), default="previewed")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ClientGroup(Base):
    """A group of companies (a holding): clients belong to at most one."""

    __tablename__ = "client_groups"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ClientRelation(Base):
    """One relation between two clients (groups.py): ``parent`` — ``related_id`` is the
    parent of ``client_id``; ``partner`` — both ways, the lower id first."""

    __tablename__ = "client_relations"
    __table_args__ = (UniqueConstraint("client_id", "related_id", "kind"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"),
                                           index=True)
    related_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"),
                                            index=True)
    kind: Mapped[str] = mapped_column(String(10))
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
