"""The deals service in a real container, beside small stand-ins for the services it asks
(clients, payments), on a real RabbitMQ virtual host and a real database."""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kombu import Connection, Producer

from services.deals.service import DealsService
from services.kit.entrypoints import rpc
from services.kit.envelope import Envelope
from services.kit.errors import NotFound
from services.kit.messaging import event_exchange


class Directory:
    """What the clients stand-in knows: clients with contacts; calls it received."""

    def __init__(self) -> None:
        self.clients: dict[int, dict[str, Any]] = {}
        self.added: list[tuple[int, dict[str, Any]]] = []
        self.planned: list[tuple[int, dict[str, Any]]] = []
        self._ids = itertools.count(100)

    def client(self, name: str, contacts: list[tuple[str, str]] = ()) -> dict[str, Any]:
        client_id = next(self._ids)
        self.clients[client_id] = {"id": client_id, "name": name, "contacts": [
            {"id": next(self._ids), "client_id": client_id, "name": n, "position": None,
             "phones": [p], "emails": []} for n, p in contacts]}
        return self.clients[client_id]


DIRECTORY = Directory()


class ClientsStandIn:
    name = "clients"

    @rpc
    def get_client(self, client_id: int) -> dict[str, Any]:
        if int(client_id) not in DIRECTORY.clients:
            raise NotFound(f"client {client_id} not found", entity="client", id=client_id)
        return DIRECTORY.clients[int(client_id)]

    @rpc
    def add_contact(self, client_id: int, data: dict[str, Any],
                    user_id: int | None = None) -> dict[str, Any]:
        contact = {"id": next(DIRECTORY._ids), "client_id": client_id, "name": data["name"],
                   "position": data.get("position"), "phones": data.get("phones", []),
                   "emails": data.get("emails", [])}
        DIRECTORY.clients[int(client_id)]["contacts"].append(contact)
        DIRECTORY.added.append((int(client_id), contact))
        return contact


class PaymentsStandIn:
    name = "payments"

    @rpc
    def add_planned_payment(self, deal_id: int, data: dict[str, Any],
                            user_id: int | None = None) -> dict[str, Any]:
        DIRECTORY.planned.append((int(deal_id), data))
        return {"id": len(DIRECTORY.planned), "deal_id": deal_id, **data}

    @rpc
    def add_payment_plan(self, deal_id: int, parts: list[dict[str, Any]],
                         user_id: int | None = None) -> list[dict[str, Any]]:
        return [self.add_planned_payment(deal_id, part, user_id) for part in parts]


@pytest.fixture
def directory() -> Iterator[Directory]:
    global DIRECTORY
    DIRECTORY = Directory()
    yield DIRECTORY


@pytest.fixture
def deals(start_service: Callable[..., Any], rpc: Any, directory: Directory) -> Any:
    """The deals service with its stand-ins; returns the RPC client."""
    start_service(ClientsStandIn)
    start_service(PaymentsStandIn)
    start_service(DealsService, REMINDER_TICK_SECONDS=0.2)
    return rpc


@pytest.fixture
def publish(amqp_uri: str) -> Callable[..., dict[str, Any]]:
    """Publish an event as another service would; returns the envelope."""

    def send(service: str, event_type: str, data: dict[str, Any],
             envelope: dict[str, Any] | None = None) -> dict[str, Any]:
        body = envelope or Envelope.new(event_type, data).to_dict()
        with Connection(amqp_uri) as conn:
            producer = Producer(conn.default_channel, exchange=event_exchange(service))
            producer.publish(body, routing_key=event_type, serializer="json",
                             declare=[event_exchange(service)])
        return body

    return send
