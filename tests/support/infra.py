"""Real PostgreSQL databases and RabbitMQ virtual hosts for tests.

Each component's schema is migrated once per run into a template database; a test gets
its own copy (CREATE DATABASE ... TEMPLATE), and its own RabbitMQ virtual host made through
the management API, so tests never see each other's data or messages."""
from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from typing import Any

import requests
from amqp.exceptions import ConsumerCancelled
from kombu import Connection, Consumer, Producer, Queue
from sqlalchemy import create_engine, text

from services.kit.messaging import event_exchange
from services.kit.migrate import drop_database, ensure_database, upgrade, versions_dir

PG_BASE = os.environ.get("TEST_DB_BASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")
RABBIT_API = os.environ.get("TEST_RABBIT_API", "http://127.0.0.1:15672/api")
RABBIT_AMQP = os.environ.get("TEST_RABBIT_AMQP", "amqp://guest:guest@127.0.0.1:5672")
AUTH = ("guest", "guest")
RUN_ID = uuid.uuid4().hex[:8]


def admin_execute(sql: str) -> None:
    engine = create_engine(f"{PG_BASE}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def template_name(component: str) -> str:
    """Named after the migrations' content: a changed migration gets a new template, and
    test runs side by side share an up-to-date one."""
    digest = hashlib.sha1()
    for path in sorted(versions_dir(component).glob("*.py")):
        digest.update(path.read_bytes())
    return f"crm_tpl_{component}_{digest.hexdigest()[:10]}"


def build_template(component: str) -> None:
    name = template_name(component)
    engine = create_engine(f"{PG_BASE}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(hashtext(:n))"), {"n": name})
            try:
                done = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n "
                                         "AND datallowconn"), {"n": name}).first()
                if not done:
                    # built under another name and renamed: a half-migrated template is
                    # never taken for a finished one
                    building = f"{PG_BASE}/{name}_building"
                    drop_database(building)
                    ensure_database(building)
                    upgrade(component, building)
                    conn.execute(text(f'ALTER DATABASE "{name}_building" RENAME TO "{name}"'))
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": name})
    finally:
        engine.dispose()


def copy_database(component: str) -> str:
    name = f"crm_t_{component}_{uuid.uuid4().hex[:10]}"
    admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name(component)}"')
    return f"{PG_BASE}/{name}"


def create_vhost() -> str:
    vhost = f"crm-test-{RUN_ID}-{uuid.uuid4().hex[:8]}"
    requests.put(f"{RABBIT_API}/vhosts/{vhost}", auth=AUTH, timeout=10).raise_for_status()
    requests.put(f"{RABBIT_API}/permissions/{vhost}/guest", auth=AUTH, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    return vhost


def delete_vhost(vhost: str) -> None:
    requests.delete(f"{RABBIT_API}/vhosts/{vhost}", auth=AUTH, timeout=10)


def amqp_uri(vhost: str) -> str:
    return f"{RABBIT_AMQP}/{vhost}"


def publish_events(uri: str, service: str, event_type: str,
                   bodies: list[dict[str, Any]]) -> None:
    """Envelopes published as ``service`` publishes them, one after the other on one
    connection: a burst, as a batch consumer meets it."""
    with Connection(uri) as conn:
        producer = Producer(conn.default_channel, exchange=event_exchange(service))
        for body in bodies:
            producer.publish(body, routing_key=event_type, serializer="json",
                             declare=[event_exchange(service)])


class EventSpy:
    """Listens to one service's events on its own queue; ``wait_for`` blocks until the
    events arrive (no sleeping and hoping)."""

    def __init__(self, uri: str, service: str, event_type: str = "#") -> None:
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._queue = Queue(f"spy-{uuid.uuid4().hex}", exchange=event_exchange(service),
                            routing_key=event_type, exclusive=True, auto_delete=True)
        self._thread = threading.Thread(target=self._run, args=(uri,), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("event spy could not connect")

    def _on_message(self, body: Any, message: Any) -> None:
        message.ack()
        with self._cond:
            self.events.append(body)
            self._cond.notify_all()

    def _run(self, uri: str) -> None:
        with Connection(uri) as conn, Consumer(conn.channel(), queues=[self._queue],
                                               callbacks=[self._on_message], accept=["json"]):
            self._ready.set()
            while not self._stop.is_set():
                try:
                    conn.drain_events(timeout=0.2)
                except TimeoutError:
                    pass
                except ConsumerCancelled:
                    # the broker cancels us when the queue goes (a test's virtual host is
                    # deleted before its spy is closed): there is nothing more to hear
                    return

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.events if e.get("type") == event_type]

    def wait_for(self, event_type: str, count: int = 1,
                 timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([e for e in self.events if e.get("type") == event_type]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} {event_type} event(s), got "
                                         f"{[e.get('type') for e in self.events]}")
                self._cond.wait(remaining)
            return [e for e in self.events if e.get("type") == event_type]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)


def wait_until(predicate: Any, timeout: float = 10, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Poll a cheap read (a database row, an HTTP page) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)
