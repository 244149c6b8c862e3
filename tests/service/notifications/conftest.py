"""Notifications on a real broker and database, delivering to real local servers: an SMTP
server (aiosmtpd), a Telegram Bot API and an SMS.ru-style API — each able to fail, hang
and throttle.  deals and clients are small fake services."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kombu import Connection, Producer
from nameko.containers import ServiceContainer
from sqlalchemy import create_engine, text

from services.kit.entrypoints import rpc
from services.kit.envelope import Envelope
from services.kit.errors import NotFound
from services.kit.messaging import event_exchange
from services.notifications.service import NotificationsService
from tests.support.infra import wait_until
from tests.support.notify_standins import SmsStandin, SmtpStandin, TelegramStandin

DEALS: dict[int, dict[str, Any]] = {}
CLIENTS: dict[int, dict[str, Any]] = {}


class FakeDeals:
    name = "deals"

    @rpc
    def get_deal(self, deal_id: int) -> dict[str, Any]:
        if int(deal_id) not in DEALS:
            raise NotFound(f"deal {deal_id} not found", entity="deal", id=deal_id)
        return DEALS[int(deal_id)]


class FakeClients:
    name = "clients"

    @rpc
    def get_client(self, client_id: int) -> dict[str, Any]:
        if int(client_id) not in CLIENTS:
            raise NotFound(f"client {client_id} not found", entity="client", id=client_id)
        return CLIENTS[int(client_id)]


@pytest.fixture
def directory() -> Iterator[tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]]:
    DEALS.clear()
    CLIENTS.clear()
    yield DEALS, CLIENTS


@pytest.fixture
def smtp() -> Iterator[SmtpStandin]:
    with SmtpStandin() as server:
        yield server


@pytest.fixture
def telegram() -> Iterator[TelegramStandin]:
    with TelegramStandin() as server:
        yield server


@pytest.fixture
def sms() -> Iterator[SmsStandin]:
    with SmsStandin() as server:
        yield server


@pytest.fixture
def provider_config(smtp: SmtpStandin, telegram: TelegramStandin,
                    sms: SmsStandin) -> dict[str, Any]:
    return {"SMTP_HOST": smtp.host, "SMTP_PORT": smtp.port, "SMTP_FROM": "CRM <crm@crm.test>",
            "SMTP_TIMEOUT": 1, "TELEGRAM_BOT_TOKEN": telegram.token,
            "TELEGRAM_API_URL": telegram.url, "TELEGRAM_POLL_TIMEOUT": 1,
            "TELEGRAM_RETRY_SECONDS": 0.2, "TELEGRAM_BOT_NAME": "crm_test_bot",
            "SMS_API_ID": sms.api_id, "SMS_API_URL": sms.url, "HTTP_READ_TIMEOUT": 1,
            "NOTIFY_POLL_SECONDS": 0.2, "NOTIFY_RETRY_BASE_SECONDS": 0.1,
            "NOTIFY_RETRY_MAX_SECONDS": 0.3, "NOTIFY_MAX_ATTEMPTS": 3,
            "NOTIFY_SEND_LEASE_SECONDS": 4, "PUBLIC_URL": "https://crm.example"}


@pytest.fixture
def notifications(start_service: Callable[..., Any], directory: Any,
                  provider_config: dict[str, Any]) -> Callable[..., Any]:
    """Start notifications (and, unless told otherwise, the fake deals and clients)."""

    def start(with_fakes: bool = True, **overrides: Any) -> ServiceContainer:
        if with_fakes:
            start_service(FakeDeals)
            start_service(FakeClients)
        return start_service(NotificationsService, **{**provider_config, **overrides})

    return start


@pytest.fixture
def publish(amqp_uri: str) -> Callable[..., Envelope]:
    """Publish an event as ``service`` would (through its events exchange)."""

    def send(service: str, type_: str, data: dict[str, Any],
             envelope: Envelope | None = None) -> Envelope:
        envelope = envelope or Envelope.new(type_, data)
        with Connection(amqp_uri) as conn:
            exchange = event_exchange(service)
            producer = Producer(conn.default_channel, exchange=exchange)
            exchange(producer.channel).declare()
            producer.publish(envelope.to_dict(), routing_key=type_, serializer="json",
                             delivery_mode=2)
        return envelope

    return send


class Deliveries:
    """Reads of the notifications database, for assertions and waiting."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def rows(self, where: str = "true", **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(
                f"SELECT * FROM deliveries WHERE {where} ORDER BY id"), params).all())

    def wait(self, where: str, count: int = 1, timeout: float = 10, **params: Any) -> list[Any]:
        return wait_until(lambda: (rows := self.rows(where, **params)) and len(rows) >= count
                          and rows, timeout=timeout, message=f"deliveries where {where}")

    def log(self, delivery_id: int) -> list[tuple[int, str | None]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT attempt, outcome FROM delivery_attempts WHERE delivery_id = :d "
                "ORDER BY id"), {"d": delivery_id}).all()]


@pytest.fixture
def deliveries(db_url: Callable[[str], str]) -> Iterator[Deliveries]:
    made = Deliveries(db_url("notifications"))
    yield made
    made.engine.dispose()
