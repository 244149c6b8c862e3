"""An event handler that finishes just as the broker drops its connection: the ack meets a
dead socket.  The service must live on (the broker redelivers what was not acked, the inbox
makes it count once), as it must through a RabbitMQ restart.

nameko's own ack forgives only py-amqp's ConnectionError; a socket the broker already
closed raises the operating system's (BrokenPipeError, ConnectionResetError), which killed
the whole container: the service stopped answering for good after a broker restart that
happened to land between a handler's commit and its ack."""
from __future__ import annotations

import socket
from typing import Any

from kombu import Connection, Producer
from nameko.messaging import QueueConsumer
from sqlalchemy import func, select

from services.kit.batch import consumes_batch
from services.kit.consuming import SturdyQueueConsumer
from services.kit.dependencies import CallLog, Remote, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.messaging import event_exchange
from services.notifications import models
from services.notifications.models import Notification
from tests.support import infra

# the container under test, and whether the next handler call cuts its connection
STATE: dict[str, Any] = {"container": None, "cut": False}


def cut_the_consumers_connection() -> None:
    """Shut our side of the socket the container consumes on: the next write on it (the
    ack) fails with EPIPE before the consumer thread has read that the peer is gone."""
    if not STATE["cut"]:
        return
    STATE["cut"] = False
    for extension in STATE["container"].extensions:
        # the live connection is known only to the kombu consumers of a queue consumer
        for consumer in list(getattr(extension, "_consumers", {}).values()):
            consumer.channel.connection.transport.sock.shutdown(socket.SHUT_WR)

class OneByOne:
    name = "ack_standin"
    db = UnitOfWork(models.metadata)
    calls = CallLog()

    @consumes("source", "thing_happened")
    def on_thing(self, event: Envelope) -> None:
        self.db.add(Notification(user_id=int(event.data["user_id"]), kind="ack",
                                 title=event.event_id, dedup_key=event.event_id))
        self.db.commit()  # the effect is in before the ack is written
        cut_the_consumers_connection()


class Batched:
    name = "ack_standin"
    db = UnitOfWork(models.metadata)
    calls = CallLog()

    @consumes_batch("source", "thing_happened")
    def on_things(self, events: list[Envelope]) -> None:
        for event in events:
            self.db.add(Notification(user_id=int(event.data["user_id"]), kind="ack",
                                     title=event.event_id, dedup_key=event.event_id))
        self.db.commit()
        cut_the_consumers_connection()


def publish(uri: str, user: int) -> None:
    with Connection(uri) as conn:
        producer = Producer(conn.default_channel, exchange=event_exchange("source"))
        producer.publish(Envelope.new("thing_happened", {"user_id": user}).to_dict(),
                         routing_key="thing_happened", serializer="json",
                         declare=[event_exchange("source")])


def applied(session_of: Any) -> dict[int, int]:
    with session_of("notifications") as db:
        return dict(db.execute(select(Notification.user_id, func.count())
                               .where(Notification.kind == "ack")
                               .group_by(Notification.user_id)).all())


def rides_out_a_dead_socket(service: type, start_service: Any, amqp_uri: str,
                            session_of: Any) -> None:
    container = start_service(service, "notifications")
    STATE.update(container=container, cut=True)
    publish(amqp_uri, 1)
    infra.wait_until(lambda: applied(session_of).get(1) == 1, timeout=15,
                     message="the first event applied")
    # the service reconnects and goes on consuming; the unacked first event comes back
    # and the inbox lets it count once
    publish(amqp_uri, 2)
    infra.wait_until(lambda: applied(session_of).get(2) == 1, timeout=30,
                     message="an event after the cut applied")
    assert not container._died.ready(), "the service died on an ack to a dead socket"
    assert applied(session_of) == {1: 1, 2: 1}


def test_a_handler_acking_on_a_dead_socket_does_not_kill_the_service(
        start_service, amqp_uri, session_of):
    rides_out_a_dead_socket(OneByOne, start_service, amqp_uri, session_of)


def test_a_batch_acking_on_a_dead_socket_does_not_kill_the_service(
        start_service, amqp_uri, session_of):
    rides_out_a_dead_socket(Batched, start_service, amqp_uri, session_of)


class EveryKind:
    """A service with every kind of kit entrypoint and a proxy to another service."""

    name = "ack_kinds_standin"
    db = UnitOfWork(models.metadata)
    other = Remote("ack_standin")

    @rpc
    def ping(self) -> str:
        return "pong"

    @consumes("source", "thing_happened")
    def on_thing(self, event: Envelope) -> None:
        pass

    @consumes_batch("source", "other_thing_happened")
    def on_things(self, events: list[Envelope]) -> None:
        pass


def test_every_consumer_of_a_kit_service_forgives_a_dead_socket(start_service):
    container = start_service(EveryKind, "notifications")
    consumers = [e for e in container.extensions if isinstance(e, QueueConsumer)]
    # RPC, events and the proxy's replies share one; the batch has its own prefetch
    assert len(consumers) == 2
    assert all(isinstance(c, SturdyQueueConsumer) for c in consumers), consumers
