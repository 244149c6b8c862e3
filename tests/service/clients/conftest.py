"""One clients service for the whole package: starting a container per test would cost
more than the tests.  Each test makes its own clients (own INNs, phones, a manager id of
its own to filter on), so tests stay independent while sharing the service."""
from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection, Producer
from nameko.containers import ServiceContainer
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from gateway.rpc import RpcClient
from services.clients.models import inbox
from services.clients.service import ClientsService
from services.kit.envelope import Envelope
from services.kit.messaging import event_exchange
from tests.support import infra
from tests.unit.clients.vectors import make_inn10, make_inn12

_numbers = itertools.count(random.randrange(10**6, 5 * 10**6, 1000))


class ClientsEnv:
    def __init__(self, uri: str, db_url: str, rpc: RpcClient) -> None:
        self.uri = uri
        self.db_url = db_url
        self.rpc = rpc
        self.engine = create_engine(db_url)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.rpc.call("clients", method, *args, **kwargs)

    def session(self) -> Session:
        return Session(self.engine)

    def publish(self, service: str, event_type: str, data: dict[str, Any],
                envelope: dict[str, Any] | None = None) -> dict[str, Any]:
        """Publish an event as another service's relay would (that service need not run)."""
        body = envelope or Envelope.new(event_type, data).to_dict()
        with Connection(self.uri) as conn:
            producer = Producer(conn.default_channel, exchange=event_exchange(service))
            producer.publish(body, routing_key=event_type, serializer="json",
                             declare=[event_exchange(service)])
        return body

    def applied(self, event_id: str) -> bool:
        """Whether a consumer has handled (applied or refused) the event."""
        with self.session() as db:
            return db.execute(select(inbox.c.event_id)
                              .where(inbox.c.event_id == event_id)).first() is not None

    def spy(self, event_type: str = "#") -> infra.EventSpy:
        return infra.EventSpy(self.uri, "clients", event_type)


@pytest.fixture(scope="package")
def clients(templates: None) -> Iterator[ClientsEnv]:
    vhost = infra.create_vhost()
    uri = infra.amqp_uri(vhost)
    db_url = infra.copy_database("clients")
    container = ServiceContainer(ClientsService, {
        "AMQP_URI": uri, "DB_URL": db_url, "RPC_TIMEOUT": 3, "OUTBOX_SWEEP_SECONDS": 0.5,
        "max_workers": 10, "DB_POOL_SIZE": 12})
    container.start()
    rpc = RpcClient(uri, timeout=10, name="test")
    env = ClientsEnv(uri, db_url, rpc)
    try:
        yield env
    finally:
        rpc.close()
        container.kill()
        env.engine.dispose()
        infra.admin_execute(f'DROP DATABASE IF EXISTS "{db_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        infra.delete_vhost(vhost)


def unique() -> int:
    return next(_numbers)


@pytest.fixture
def manager() -> int:
    """A manager id no other test uses: the list filtered by it shows only this test's."""
    return unique()


def inn10() -> str:
    return make_inn10(f"77{unique():07d}")


def inn12() -> str:
    return make_inn12(f"50{unique():08d}")


def mobile() -> str:
    """A valid Russian mobile number nobody else in the run has, in E.164."""
    return f"+7916{unique() % 10**7:07d}"


def tag() -> str:
    return uuid.uuid4().hex[:8]
