"""The payments service in a real container on a real RabbitMQ virtual host and a real
database; deals and clients are played by publishing their events (as they will)."""
from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Producer
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.kit.envelope import Envelope
from services.kit.messaging import event_exchange
from services.payments.models import ClientRef, DealRef
from services.payments.service import PaymentsService
from tests.support import infra

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_FEEDS = REPO_ROOT.parent / "shared" / "data" / "feeds"
OWN_FEEDS = REPO_ROOT / "tests" / "fixtures" / "feeds"
OUR_ACCOUNT = "40702810900000000001"


def publish(uri: str, service: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """Publish an event as ``service`` would (its exchange, the envelope)."""
    envelope = Envelope.new(event_type, data).to_dict()
    with Connection(uri) as conn:
        producer = Producer(conn.default_channel, exchange=event_exchange(service))
        producer.publish(envelope, routing_key=event_type, serializer="json",
                         declare=[event_exchange(service)])
    return envelope


class Payments:
    """The running service and what a test does with it."""

    def __init__(self, rpc: Any, uri: str, session_of: Callable[[str], Session],
                 storage: Path) -> None:
        self.rpc = rpc
        self.uri = uri
        self.session_of = session_of
        self.storage = storage
        self._ids = itertools.count(1000)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "add_planned_payment" and args and isinstance(args[0], int):
            self.exists(args[0])  # payments refuses plans for deals it never heard of
        return self.rpc.call("payments", method, *args, **kwargs)

    def db(self) -> Session:
        return self.session_of("payments")

    # -- deals and clients, as their events tell it --------------------------------------
    def client(self, inn: str | None, name: str = "ООО «Клиент»", manager_id: int = 7) -> int:
        client_id = next(self._ids)
        publish(self.uri, "clients", "client_created", {
            "client_id": client_id, "name": name, "inn": inn, "manager_id": manager_id})
        return client_id

    def deal(self, client_id: int, manager_id: int = 7, name: str = "Сделка") -> int:
        deal_id = next(self._ids)
        publish(self.uri, "deals", "deal_created", {
            "deal_id": deal_id, "name": name, "client_id": client_id, "manager_id": manager_id,
            "status": "new", "client_name": "x", "amount": "0.00"})
        return deal_id

    def exists(self, deal_id: int, manager_id: int = 7) -> None:
        """Announce a deal (deal_created) unless payments already knows it."""
        with self.db() as db:
            if db.get(DealRef, deal_id) is not None:
                return
        publish(self.uri, "deals", "deal_created", {
            "deal_id": deal_id, "name": f"Сделка {deal_id}", "client_id": None,
            "manager_id": manager_id, "status": "new", "client_name": "x", "amount": "0.00"})
        self.known(deal_id)

    def known(self, deal_id: int | None = None, client_id: int | None = None) -> None:
        """Wait until the projection has the deal/client (events are asynchronous)."""
        def present() -> bool:
            with self.db() as db:
                ok = True
                if deal_id is not None:
                    ok = ok and db.get(DealRef, deal_id) is not None
                if client_id is not None:
                    ok = ok and db.get(ClientRef, client_id) is not None
                return ok
        infra.wait_until(present, message=f"deal {deal_id} / client {client_id} projected")

    def deal_of_client(self, inn: str | None, manager_id: int = 7) -> int:
        client_id = self.client(inn, manager_id=manager_id)
        deal_id = self.deal(client_id, manager_id)
        self.known(deal_id, client_id)
        return deal_id

    def plan(self, deal_id: int, amount: str, due: Any, **more: Any) -> dict[str, Any]:
        self.exists(deal_id)
        return self.call("add_planned_payment", deal_id,
                         {"amount": amount, "due_date": str(due), **more}, user_id=1)

    # -- statements --------------------------------------------------------------------------
    def our_account(self, account: str = OUR_ACCOUNT) -> None:
        self.call("add_own_account", {"account": account, "name": "Основной"}, user_id=2)

    def upload(self, data: bytes | Path, filename: str = "statement.txt") -> dict[str, Any]:
        """Store a file as the gateway does and queue it; returns the job."""
        if isinstance(data, Path):
            filename, data = data.name, data.read_bytes()
        uploads = self.storage / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        stored = uuid.uuid4().hex
        (uploads / stored).write_bytes(data)
        return self.call("create_import", {"stored_name": stored, "filename": filename},
                         user_id=2)

    def finished(self, job_id: int, timeout: float = 30) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            job = self.call("get_import", job_id)
            return job if job["status"] in ("done", "failed") else None
        return infra.wait_until(done, timeout=timeout, interval=0.05,
                                message=f"import {job_id} to finish")

    def imported(self, data: bytes | Path, filename: str = "statement.txt") -> dict[str, Any]:
        return self.finished(self.upload(data, filename)["id"])

    def transactions(self, **where: Any) -> list[Any]:
        from services.payments.models import BankTransaction

        with self.db() as db:
            stmt = select(BankTransaction).order_by(BankTransaction.id)
            for key, value in where.items():
                stmt = stmt.where(getattr(BankTransaction, key) == value)
            return list(db.scalars(stmt))


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "statements"


@pytest.fixture
def start_payments(start_service: Callable[..., Any], storage: Path) -> Callable[..., Any]:
    def start(**overrides: Any) -> Any:
        settings = {"STATEMENTS_DIR": str(storage), "IMPORT_POLL_SECONDS": 0.05,
                    "OVERDUE_CHECK_SECONDS": 3600, "STATEMENTS_INBOX_SECONDS": 3600,
                    "LOCK_TIMEOUT_MS": 300,
                    **overrides}
        return start_service(PaymentsService, **settings)
    return start


@pytest.fixture
def payments(start_payments: Callable[..., Any], rpc: Any, amqp_uri: str,
             session_of: Callable[[str], Session], storage: Path) -> Payments:
    start_payments()
    return Payments(rpc, amqp_uri, session_of, storage)


@pytest.fixture
def shared_feeds() -> Path:
    if not SHARED_FEEDS.is_dir():
        pytest.skip("../shared/data/feeds is absent: real bank statements are only in "
                    "CI/dev checkouts")
    return SHARED_FEEDS


def wait_briefly_for(predicate: Callable[[], Any], message: str, timeout: float = 10) -> Any:
    return infra.wait_until(predicate, timeout=timeout, interval=0.05, message=message)


def monotonic() -> float:
    return time.monotonic()
