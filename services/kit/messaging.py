"""Transactional outbox and idempotent inbox.

A change and the events it raises are written in one transaction (the ``outbox`` table);
a relay publishes them after commit and again after a crash.  A consumer records each
``event_id`` in the ``inbox`` table in the same transaction as its effect, so a
redelivered event is applied once.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from amqp.exceptions import MessageNacked
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
    the work without publishing a row twice at the same time.  A batch is published
    whole and then its confirms are awaited together (RabbitMQ acks up to a delivery tag
    at once): one round trip to the broker per batch instead of one per event.  Rows are
    marked published only once every one of them is confirmed; a batch that fails is
    published again one row at a time, so a row that cannot be published holds back only
    the rows after it, as before.  A crash between publish and marking re-publishes rows
    later; consumers' inbox absorbs that.
    """

    CONFIRM_TIMEOUT = 10.0

    def __init__(self, service_name: str, amqp_uri: str, outbox: Table,
                 batch_size: int = 200) -> None:
        self.exchange = event_exchange(service_name)
        self.amqp_uri = amqp_uri
        self.outbox = outbox
        self.batch_size = batch_size
        self.connection: Connection | None = None
        self.producer: Producer | None = None
        self._sent = 0  # delivery tags used on the producer's channel (confirm mode)
        self._outstanding: set[int] = set()  # published, not yet confirmed
        self._refused: list[int] = []

    def _producer(self) -> Producer:
        if self.producer is None:
            self.connection = Connection(self.amqp_uri)
            self.producer = Producer(self.connection.default_channel, exchange=self.exchange)
            self.exchange(self.producer.channel).declare()
            channel = self.producer.channel
            channel.confirm_select()
            # the broker's confirms can be read while publishing as well as while waiting:
            # listeners see every one of them
            channel.events["basic_ack"].add(self._heard_ack)
            channel.events["basic_nack"].add(self._heard_nack)
            self._sent = 0
            self._outstanding = set()
            self._refused = []
        return self.producer

    def _heard_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._outstanding.difference_update(
                [t for t in self._outstanding if t <= delivery_tag])
        else:
            self._outstanding.discard(delivery_tag)

    def _heard_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._refused.append(delivery_tag)
        self._heard_ack(delivery_tag, multiple)

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
        if not rows:
            return 0
        try:
            self._publish_confirmed(rows)
            published = [row["id"] for row in rows]
        except Exception:
            log.warning("outbox: a batch of %d events was not confirmed; publishing them one "
                        "by one", len(rows), exc_info=True)
            self.close()
            published = self._one_by_one(session, rows)
        if published:
            session.execute(update(self.outbox).where(self.outbox.c.id.in_(published))
                            .values(published_at=datetime.now(UTC)))
        return len(published)

    def _one_by_one(self, session: Session, rows: Sequence[Any]) -> list[int]:
        published = []
        for row in rows:
            try:
                self._publish_confirmed([row])
            except Exception:
                log.exception("outbox: publishing %s %s failed; will retry", row["type"],
                              row["event_id"])
                self.close()
                session.execute(update(self.outbox).where(self.outbox.c.id == row["id"])
                                .values(attempts=self.outbox.c.attempts + 1))
                break
            published.append(row["id"])
        return published

    def _publish_confirmed(self, rows: Sequence[Any]) -> None:
        """Publish ``rows`` and return once the broker has confirmed every one of them;
        raise if it refuses one (nack) or does not answer in time."""
        producer = self._producer()
        # delivery tags count the channel's publishes from 1; an ack may cover every tag
        # up to its own (multiple)
        self._outstanding.update(range(self._sent + 1, self._sent + len(rows) + 1))
        self._refused.clear()
        for row in rows:
            self._publish(producer, row)
            self._sent += 1
        assert self.connection is not None
        while self._outstanding and not self._refused:
            self.connection.drain_events(timeout=self.CONFIRM_TIMEOUT)
        if self._refused:
            raise MessageNacked(f"the broker refused delivery tags {self._refused}")

    def purge_published(self, session: Session, keep_days: int) -> int:
        """Published rows are kept a while for tracing, then deleted so the table stays small."""
        cutoff = datetime.now(UTC) - timedelta(days=keep_days)
        result = session.execute(delete(self.outbox).where(self.outbox.c.published_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    @staticmethod
    def _publish(producer: Producer, row: Any) -> None:
        envelope = Envelope(str(row["event_id"]), row["type"], row["version"],
                            row["occurred_at"].isoformat(), row["data"])
        headers = {"nameko.call_id_stack": [row["call_id"]]} if row["call_id"] else {}
        # no retry here: a reconnect would open a new channel whose delivery tags start
        # again, and the batch's confirms could not be counted; a failure is the batch's
        producer.publish(envelope.to_dict(), routing_key=envelope.type, serializer="json",
                         delivery_mode=2, headers=headers)
