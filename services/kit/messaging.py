"""Transactional outbox and idempotent inbox.

A change and the events it raises are written in one transaction (the ``outbox`` table);
a relay publishes them after commit and again after a crash.  A consumer records each
``event_id`` in the ``inbox`` table in the same transaction as its effect, so a
redelivered event is applied once.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from kombu import Connection, Exchange, Producer
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.orm import Session

from services.kit.envelope import Envelope

log = logging.getLogger("crm.outbox")


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the outbox and inbox tables to a service's metadata (one per database)."""
    outbox = Table(
        "outbox", metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", UUID(as_uuid=False), nullable=False, unique=True),
        Column("type", String(100), nullable=False),
        Column("version", Integer, nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("data", JSONB, nullable=False),
        Column("call_id", String(200)),
        Column("published_at", DateTime(timezone=True), index=True),
        Column("attempts", Integer, nullable=False, server_default="0"),
    )
    inbox = Table(
        "inbox", metadata,
        Column("handler", String(200), primary_key=True),
        Column("event_id", UUID(as_uuid=False), primary_key=True),
        Column("type", String(100), nullable=False),
        Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("rejected", Text),
    )
    return outbox, inbox


def event_exchange(service_name: str) -> Exchange:
    # Same declaration as nameko's event handlers make, or RabbitMQ refuses it.
    return Exchange(f"{service_name}.events", type="topic", durable=True, delivery_mode=2)


def add_to_outbox(session: Session, outbox: Table, envelope: Envelope,
                  call_id: str | None = None) -> None:
    add_all_to_outbox(session, outbox, [(envelope, call_id)])


def add_all_to_outbox(session: Session, outbox: Table,
                      events: list[tuple[Envelope, str | None]]) -> None:
    """Events with the call ids they came from, in one multi-row statement."""
    if events:
        session.execute(outbox.insert(), [
            {"event_id": e.event_id, "type": e.type, "version": e.version,
             "occurred_at": datetime.fromisoformat(e.occurred_at), "data": e.data,
             "call_id": call_id} for e, call_id in events])


def claim_inbox(session: Session, inbox: Table, handler: str, envelope: Envelope) -> bool:
    """Record the event as applied by ``handler``; False if it already was.

    A concurrent duplicate blocks on the primary key until the first transaction ends,
    then sees the conflict: the event is applied once either way."""
    stmt = (insert(inbox).values(handler=handler, event_id=envelope.event_id,
                                 type=envelope.type)
            .on_conflict_do_nothing().returning(inbox.c.event_id))
    return session.execute(stmt).first() is not None


class Relay:
    """Publishes unpublished outbox rows, oldest first, with publisher confirms.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so several replicas of a service share
    the work without publishing a row twice at the same time.  A crash between publish and
    marking re-publishes the row later; consumers' inbox absorbs that.
    """

    def __init__(self, service_name: str, amqp_uri: str, outbox: Table,
                 batch_size: int = 200) -> None:
        self.exchange = event_exchange(service_name)
        self.amqp_uri = amqp_uri
        self.outbox = outbox
        self.batch_size = batch_size
        self.connection: Connection | None = None
        self.producer: Producer | None = None

    def _producer(self) -> Producer:
        if self.producer is None:
            self.connection = Connection(self.amqp_uri, transport_options={"confirm_publish": True})
            self.producer = Producer(self.connection.default_channel, exchange=self.exchange)
            self.exchange(self.producer.channel).declare()
        return self.producer

    def close(self) -> None:
        if self.connection is not None:
            self.connection.release()
        self.connection = self.producer = None

    def publish_pending(self, session: Session) -> int:
        """Publish one batch; the caller commits.  Returns how many were published."""
        rows = session.execute(
            select(self.outbox).where(self.outbox.c.published_at.is_(None))
            .order_by(self.outbox.c.id).limit(self.batch_size)
            .with_for_update(skip_locked=True)).mappings().all()
        published = []
        for row in rows:
            try:
                self._publish(row)
            except Exception:
                log.exception("outbox: publishing %s %s failed; will retry", row["type"],
                              row["event_id"])
                self.close()
                session.execute(update(self.outbox).where(self.outbox.c.id == row["id"])
                                .values(attempts=self.outbox.c.attempts + 1))
                break
            published.append(row["id"])
        if published:
            session.execute(update(self.outbox).where(self.outbox.c.id.in_(published))
                            .values(published_at=datetime.now(UTC)))
        return len(published)

    def purge_published(self, session: Session, keep_days: int) -> int:
        """Published rows are kept a while for tracing, then deleted so the table stays small."""
        cutoff = datetime.now(UTC) - timedelta(days=keep_days)
        result = session.execute(delete(self.outbox).where(self.outbox.c.published_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    def _publish(self, row: Any) -> None:
        envelope = Envelope(str(row["event_id"]), row["type"], row["version"],
                            row["occurred_at"].isoformat(), row["data"])
        headers = {"nameko.call_id_stack": [row["call_id"]]} if row["call_id"] else {}
        self._producer().publish(
            envelope.to_dict(), routing_key=envelope.type, serializer="json",
            delivery_mode=2, headers=headers, retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5})
