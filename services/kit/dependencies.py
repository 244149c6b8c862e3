"""nameko dependency providers: the unit of work (with the outbox relay), RPC to other
services with a deadline, and the one-line-per-call log."""
from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import eventlet
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from nameko.extensions import DependencyProvider
from nameko.rpc import ReplyListener, RpcProxy
from nameko.timer import Timer
from sqlalchemy import MetaData, delete
from sqlalchemy.orm import Session, sessionmaker

from services.kit import permissions
from services.kit.consuming import SturdyQueueConsumer
from services.kit.db import make_engine, transaction
from services.kit.envelope import Envelope
from services.kit.errors import RemoteTimeout
from services.kit.idempotency import KEEP_HOURS
from services.kit.messaging import Relay, add_to_outbox

log = logging.getLogger("crm.calls")


def call_id_of(worker_ctx: Any) -> str | None:
    stack = worker_ctx.call_id_stack
    return stack[-1] if stack else None


class Work:
    """What an entrypoint sees as ``self.db``: the session, plus ``emit`` for events.

    ``commit`` is called by the entrypoint decorators *before* nameko sends the RPC reply
    or acks the event message, so a caller never hears "done" for a rolled-back change.
    """

    def __init__(self, session: Session, provider: UnitOfWork, worker_ctx: Any) -> None:
        self.session = session
        self.provider = provider
        self.worker_ctx = worker_ctx
        self.emitted = 0

    def emit(self, type_: str, data: dict[str, Any], version: int = 1) -> Envelope:
        envelope = Envelope.new(type_, data, version)
        add_to_outbox(self.session, self.provider.outbox, envelope, call_id_of(self.worker_ctx))
        self.emitted += 1
        return envelope

    def commit(self) -> None:
        self.session.commit()
        if self.emitted:
            self.emitted = 0
            self.provider.wake_relay()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


class UnitOfWork(DependencyProvider):
    """One SQLAlchemy session per worker, committed when the entrypoint returns without
    error (see ``services.kit.entrypoints``), rolled back otherwise, closed at teardown.
    Also runs the outbox relay of this service."""

    def __init__(self, metadata: MetaData) -> None:
        self.metadata = metadata
        self.works: dict[Any, Work] = {}

    @property
    def outbox(self) -> Any:
        return self.metadata.tables["outbox"]

    def setup(self) -> None:
        config = self.container.config
        self.engine = make_engine(config["DB_URL"], pool_size=int(config.get("DB_POOL_SIZE", 10)))
        self.factory = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.relay = Relay(self.container.service_name, config["AMQP_URI"], self.outbox)
        self.sweep_seconds = float(config.get("OUTBOX_SWEEP_SECONDS", 2))
        self.publish_after_commit = bool(config.get("OUTBOX_PUBLISH_AFTER_COMMIT", True))
        self.keep_days = int(config.get("OUTBOX_KEEP_DAYS", 7))
        self._next_purge = 0.0
        self._wake = Event()
        self._relay_lock = Semaphore()
        self._running = True

    def start(self) -> None:
        self.container.spawn_managed_thread(self._relay_loop, identifier="outbox-relay")

    def stop(self) -> None:
        self._running = False
        self.wake_relay()
        self._close()

    def kill(self) -> None:
        self._running = False
        self._close()

    def _close(self) -> None:
        # Under the relay's lock: closing the broker connection while a pass is publishing
        # on it would make two green threads read one socket.
        with self._relay_lock:
            self.relay.close()
        self.engine.dispose()

    def wake_relay(self) -> None:
        if self.publish_after_commit and not self._wake.ready():
            self._wake.send(True)

    def _relay_loop(self) -> None:
        while self._running:
            with eventlet.Timeout(self.sweep_seconds, False):
                self._wake.wait()
            self._wake = Event()
            if not self._running:
                break
            try:
                self.publish_pending()
                self._purge_now_and_then()
            except Exception:  # the loop must survive a database or broker outage
                logging.getLogger("crm.outbox").exception("outbox relay pass failed")

    def _purge_now_and_then(self) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + 3600
        self.purge()

    def purge(self) -> None:
        inbox = self.metadata.tables["inbox"]
        # Duplicates arrive within minutes (redelivery) or hours (a relay after a crash);
        # a month of remembered event ids is ample.
        cutoff = datetime.now(UTC) - timedelta(days=30)
        with transaction(self.factory) as session:
            self.relay.purge_published(session, self.keep_days)
            session.execute(delete(inbox).where(inbox.c.applied_at < cutoff))
            calls = self.metadata.tables.get("idempotent_calls")
            if calls is not None:
                session.execute(delete(calls).where(calls.c.created_at < datetime.now(UTC)
                                                    - timedelta(hours=KEEP_HOURS)))

    def publish_pending(self) -> int:
        total = 0
        while True:
            with self._relay_lock, transaction(self.factory) as session:
                count = self.relay.publish_pending(session)
            total += count
            if count < self.relay.batch_size:
                return total

    def get_dependency(self, worker_ctx: Any) -> Work:
        work = Work(self.factory(), self, worker_ctx)
        self.works[worker_ctx] = work
        return work

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        work = self.works.get(worker_ctx)
        if work is not None and exc_info is not None:
            work.session.rollback()

    def worker_teardown(self, worker_ctx: Any) -> None:
        work = self.works.pop(worker_ctx, None)
        if work is not None:
            work.session.close()


class TimedProxy:
    def __init__(self, proxy: Any, target: str, timeout: float) -> None:
        self._proxy = proxy
        self._target = target
        self._timeout = timeout

    def __getattr__(self, method: str) -> Any:
        remote = getattr(self._proxy, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            timeout = RemoteTimeout(f"{self._target}.{method} did not answer within "
                                    f"{self._timeout:g} s", service=self._target)
            with eventlet.Timeout(self._timeout, timeout):
                return remote(*args, **kwargs)

        return call


class SturdyReplyListener(ReplyListener):  # type: ignore[misc]
    # the replies are acked in a worker thread too: a broker restart there must not kill
    # the service (services/kit/consuming.py)
    queue_consumer = SturdyQueueConsumer()


class Remote(RpcProxy):
    """RPC to another service with a deadline (nameko's proxy waits forever).

    ``self.clients.get_client(7)`` raises ``RemoteTimeout`` after ``RPC_TIMEOUT`` seconds
    (config, default 5) and the typed kit errors the remote service raised."""

    rpc_reply_listener = SturdyReplyListener()

    def __init__(self, target_service: str, timeout: float | None = None, **options: Any) -> None:
        super().__init__(target_service, **options)
        self.timeout = timeout

    def get_dependency(self, worker_ctx: Any) -> TimedProxy:
        timeout = self.timeout or float(self.container.config.get("RPC_TIMEOUT", 5))
        return TimedProxy(super().get_dependency(worker_ctx), self.target_service, timeout)


class CallLog(DependencyProvider):
    """One JSON line per RPC call, event or timer handled, carrying nameko's call id so a
    request can be followed across services."""

    def __init__(self) -> None:
        self.started: dict[Any, float] = {}

    def worker_setup(self, worker_ctx: Any) -> None:
        self.started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        started = self.started.pop(worker_ctx, None)
        elapsed = (time.perf_counter() - started) * 1000 if started else None
        stack = worker_ctx.call_id_stack
        line = {
            "service": self.container.service_name,
            "entrypoint": worker_ctx.entrypoint.method_name,
            "kind": type(worker_ctx.entrypoint).__name__,
            "call_id": stack[-1] if stack else None,
            "parent_call_id": stack[-2] if len(stack) > 1 else None,
            "ms": round(elapsed, 2) if elapsed is not None else None,
            "outcome": "ok" if exc_info is None else "error",
        }
        if exc_info is not None:
            line["error"] = f"{exc_info[0].__name__}: {exc_info[1]}"
        # a timer tick that found nothing to do is noise at INFO (see services.kit.timer)
        idle = exc_info is None and isinstance(worker_ctx.entrypoint, Timer) and not result
        log.log(logging.DEBUG if idle else logging.INFO, json.dumps(line, ensure_ascii=False))


class Permissions(DependencyProvider):
    """``self.may.check("deals", [deal.manager_id], "deal 5")`` in an entrypoint: the
    permission matrix (services/kit/permissions.py) applied to this call's actor."""

    def setup(self) -> None:
        self.matrix = permissions.matrix_from(self.container.config)

    def get_dependency(self, worker_ctx: Any) -> Any:
        return Acting(self.matrix, (worker_ctx.kwargs or {}).get(permissions.KWARG))


class Acting:
    def __init__(self, matrix: dict[str, dict[str, str]], actor: Any) -> None:
        self.matrix = matrix
        self.actor = actor if isinstance(actor, dict) else None

    def check(self, resource: str, owners: Any, what: str) -> None:
        permissions.check(self.matrix, self.actor, resource, owners, what)

    @property
    def user_id(self) -> int | None:
        return self.actor.get("id") if self.actor else None
