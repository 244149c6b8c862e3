"""The analytics service in a real container beside the real deals service (whose
statuses, types and history it asks), with a small clients stand-in, on a real RabbitMQ
virtual host and real databases."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kombu import Connection, Producer
from sqlalchemy import func, select

from services.analytics.models import DealState, Transition, inbox
from services.analytics.service import AnalyticsService
from services.deals.service import DealsService
from services.kit.entrypoints import rpc
from services.kit.envelope import Envelope
from services.kit.errors import NotFound
from services.kit.messaging import event_exchange
from tests.support.infra import wait_until

CLIENTS = {501: "ООО «Альфа»", 502: "АО «Бета»"}
HEAD = {"user_id": 1, "roles": ["head"]}
# the win-probability and performance handlers keep their own inbox rows: the funnel's
# count leaves them out
PROBABILITY_HANDLERS = ("analytics.learn_outcome", "analytics.on_lead_accepted",
                        "analytics.on_task_created", "analytics.on_task_completed",
                        "analytics.on_call_finished", "analytics.on_call_updated",
                        "analytics.on_manual_probability", "analytics.on_deal_facts")


class ClientsStandIn:
    name = "clients"

    @rpc
    def get_client(self, client_id: int) -> dict[str, Any]:
        if int(client_id) not in CLIENTS:
            raise NotFound(f"client {client_id} not found")
        return {"id": int(client_id), "name": CLIENTS[int(client_id)], "contacts": []}


class Stack:
    def __init__(self, rpc: Any, uri: str, session_of: Callable[[str], Any]) -> None:
        self.rpc, self.uri, self.session_of = rpc, uri, session_of

    def funnel(self, **filters: Any) -> dict[str, Any]:
        viewer = filters.pop("viewer", HEAD)
        return self.rpc.call("analytics", "funnel", filters=filters, viewer=viewer)

    def publish(self, service: str, body: dict[str, Any]) -> None:
        with Connection(self.uri) as conn:
            producer = Producer(conn.default_channel, exchange=event_exchange(service))
            producer.publish(body, routing_key=body["type"], serializer="json",
                             declare=[event_exchange(service)])

    def envelope(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        return Envelope.new(event_type, data).to_dict()

    def counts(self) -> tuple[int, int, int]:
        with self.session_of("analytics") as s:
            return (s.scalar(select(func.count()).select_from(DealState)),
                    s.scalar(select(func.count()).select_from(Transition)),
                    s.scalar(select(func.count()).select_from(inbox).where(
                        inbox.c.handler.notin_(PROBABILITY_HANDLERS))))

    def wait_applied(self, events: int) -> None:
        wait_until(lambda: self.counts()[2] >= events, timeout=20,
                   message=f"{events} events in the analytics inbox")


@pytest.fixture
def stack(start_service: Callable[..., Any], rpc: Any, amqp_uri: str,
          session_of: Callable[[str], Any]) -> Stack:
    start_service(ClientsStandIn)
    start_service(DealsService)
    start_service(AnalyticsService)
    return Stack(rpc, amqp_uri, session_of)
