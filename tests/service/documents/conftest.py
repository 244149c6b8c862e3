"""Documents on a real broker and database beside the real clients, deals and
notifications services (mail to an aiosmtpd server on loopback)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.rpc import RpcClient
from services.clients.service import ClientsService
from services.deals.service import DealsService
from services.documents.service import DocumentsService
from services.notifications.service import NotificationsService
from services.payments.service import PaymentsService
from tests.support.notify_standins import SmtpStandin
from tests.support.payment_provider import PaymentProviderStandIn

MANAGER = 7
COMPANY = {"name": "ООО «Вектор»", "inn": "7707083893", "kpp": "770701001",
           "ogrn": "1027700132195", "address": "Москва, ул. Тверская, 1",
           "bank_name": "ПАО Сбербанк", "bik": "044525225",
           "settlement_account": "40702810938000000001",
           "correspondent_account": "30101810400000000225", "director": "Иванов И. И.",
           "vat_rate": "20"}
BUYER = {"kind": "legal", "name": "Ромашка", "inn": "7728168971", "kpp": "772801001",
         "requisites": {"name": "ООО «Ромашка»", "legal_address": "Москва, ул. Ленина, 5"},
         "contacts": [{"name": "Пётр Сидоров", "emails": ["petr@romashka.test"],
                       "phones": ["+7 916 123-45-67"]}]}
LINES = [{"kind": "service", "name": "Внедрение CRM", "quantity": "1",
          "unit_price": "100000.00"},
         {"kind": "goods", "name": "Лицензия", "quantity": "2", "unit_price": "10000.25"}]


@pytest.fixture
def start_service(start_service: Callable[..., Any]) -> Callable[..., Any]:
    """The tier's ``start_service`` with generous deadlines between services (these tests
    are about numbers and links, and two shared cores under a burst of 50 PDFs are slow)
    and small pools (the test PostgreSQL is shared)."""

    def start(service_cls: type, **overrides: Any) -> Any:
        return start_service(service_cls, **{"RPC_TIMEOUT": 30, "DB_POOL_SIZE": 3,
                                             **overrides})

    return start


@pytest.fixture
def rpc(amqp_uri: str) -> Iterator[RpcClient]:
    """A patient client: a PDF takes a moment on two shared cores (fonts load on the first)."""
    client = RpcClient(amqp_uri, timeout=30, name="test")
    yield client
    client.close()


@pytest.fixture
def smtp() -> Iterator[SmtpStandin]:
    with SmtpStandin() as server:
        yield server


@pytest.fixture
def provider() -> Iterator[PaymentProviderStandIn]:
    running = PaymentProviderStandIn()
    yield running
    running.close()


@pytest.fixture
def stack(start_service: Callable[..., Any], smtp: SmtpStandin,
          provider: PaymentProviderStandIn, tmp_path: Path) -> None:
    start_service(ClientsService)
    start_service(DealsService)
    start_service(PaymentsService, STATEMENTS_DIR=str(tmp_path / "statements"),
                  OVERDUE_CHECK_SECONDS=3600, STATEMENTS_INBOX_SECONDS=3600,
                  IMPORT_POLL_SECONDS=3600, ONLINE_PAYMENTS_API_URL=provider.url,
                  ONLINE_PAYMENTS_SHOP_ID="shop", ONLINE_PAYMENTS_SECRET_KEY="secret")
    start_service(NotificationsService, SMTP_HOST=smtp.host, SMTP_PORT=smtp.port,
                  SMTP_FROM="CRM <crm@crm.test>", SMTP_TIMEOUT=2, NOTIFY_POLL_SECONDS=0.2)
    start_service(DocumentsService)


@pytest.fixture
def deal(stack: None, rpc: Any) -> dict[str, Any]:
    """A deal with a calculation, a buyer with requisites and a main contact, and our own
    requisites saved."""
    rpc.call("documents", "save_company", COMPANY, MANAGER)
    client = rpc.call("clients", "create_client", BUYER, MANAGER)
    made = rpc.call("deals", "create_deal", {"name": "Внедрение CRM в «Ромашке»",
                                             "client_id": client["id"],
                                             "manager_id": MANAGER}, MANAGER)
    rpc.call("deals", "save_calculation", made["id"], LINES, MANAGER)
    return made


def template_id(rpc: Any, kind: str) -> int:
    return next(t["id"] for t in rpc.call("documents", "list_templates", kind))
