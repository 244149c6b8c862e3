"""A lean RPC client for the gateway, speaking nameko's RPC protocol over kombu.

nameko's own ``ClusterRpcProxy`` costs three to four times the broker round trip and a
new one per request is slower still (docs/ARCHITECTURE.md), so the gateway keeps one
connection for publishing and one reply queue consumed by a background thread, and a page
sends all its calls before waiting for any.

Protocol: publish ``{"args": [...], "kwargs": {...}}`` as JSON to the ``nameko-rpc``
exchange with routing key ``<service>.<method>``, ``reply_to`` = our reply queue's routing
key and a ``correlation_id``; the reply is ``{"result": ..., "error": ...}``.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

from services.kit.contract.rpc import EXCLUSIVE_REPLY_QUEUE_HEADER
from services.kit.errors import RemoteTimeout, ServiceUnavailable, error_from_reply

log = logging.getLogger("crm.gateway.rpc")

RPC_EXCHANGE = Exchange("nameko-rpc", durable=True, type="topic")


class Reply:
    """The future answer of one call."""

    def __init__(self, service: str, method: str,
                 forget: Callable[[], None] | None = None) -> None:
        self.service = service
        self.method = method
        self._done = threading.Event()
        self._body: dict[str, Any] | None = None
        self._forget = forget

    def _resolve(self, body: dict[str, Any]) -> None:
        self._body = body
        self._done.set()

    def result(self, deadline: float) -> Any:
        """Wait until ``deadline`` (a ``time.monotonic()`` value); raise the remote error,
        or ``RemoteTimeout``."""
        if not self._done.wait(max(0.0, deadline - time.monotonic())):
            if self._forget is not None:
                self._forget()  # nobody waits any more: a late reply is dropped
            raise RemoteTimeout(f"{self.service}.{self.method} did not answer in time",
                                service=self.service)
        assert self._body is not None
        error = self._body.get("error")
        if error:
            raise error_from_reply(error)
        return self._body.get("result")


class RpcClient:
    def __init__(self, amqp_uri: str, timeout: float = 5.0, name: str = "gateway") -> None:
        self.amqp_uri = amqp_uri
        self.timeout = timeout
        self.reply_key = f"{name}-{uuid.uuid4().hex}"
        self.reply_queue = Queue(f"rpc.reply-{self.reply_key}", exchange=RPC_EXCHANGE,
                                 routing_key=self.reply_key, exclusive=True, auto_delete=True)
        # correlation id -> (reply, when to give up on it): entries leave when the reply
        # comes, when its waiter times out, or when the sweep finds them expired (a reply
        # nobody waited for); a late reply then finds nothing and is dropped.
        self._pending: dict[str, tuple[Reply, float]] = {}
        self._next_sweep = 0.0
        self._pending_lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._producer: Producer | None = None
        self._publish_conn: Connection | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._consume_forever, name="rpc-replies",
                                        daemon=True)
        self._thread.start()

    # -- calls --------------------------------------------------------------------------
    def call_async(self, service: str, method: str, *args: Any, call_id: str | None = None,
                   timeout: float | None = None, **kwargs: Any) -> Reply:
        if not self._ready.wait(timeout or self.timeout):
            raise ServiceUnavailable("the message bus is unavailable", service=service)
        correlation_id = uuid.uuid4().hex
        reply = Reply(service, method, forget=lambda: self._forget(correlation_id))
        ttl = timeout or self.timeout
        with self._pending_lock:
            self._pending[correlation_id] = (reply, time.monotonic() + ttl + 1.0)
        headers = {"nameko.call_id_stack": [call_id or f"gateway.{correlation_id}"],
                   # our reply queue goes with our connection: no confirm can make a reply
                   # to it durable, so the service need not wait for one
                   EXCLUSIVE_REPLY_QUEUE_HEADER: True}
        try:
            with self._publish_lock:
                self._get_producer().publish(
                    {"args": list(args), "kwargs": kwargs}, exchange=RPC_EXCHANGE,
                    routing_key=f"{service}.{method}", reply_to=self.reply_key,
                    correlation_id=correlation_id, serializer="json", headers=headers,
                    # a request nobody picked up in time is dropped, not run late
                    expiration=ttl, retry=True, retry_policy={"max_retries": 1})
        except Exception as exc:
            with self._pending_lock:
                self._pending.pop(correlation_id, None)
            self._reset_producer()
            raise ServiceUnavailable(f"cannot reach {service}: {exc}", service=service) from exc
        return reply

    def call(self, service: str, method: str, *args: Any, timeout: float | None = None,
             **kwargs: Any) -> Any:
        wait = timeout or self.timeout
        reply = self.call_async(service, method, *args, timeout=wait, **kwargs)
        return reply.result(time.monotonic() + wait)

    @property
    def pending(self) -> int:
        """How many calls still wait for a reply."""
        with self._pending_lock:
            return len(self._pending)

    def _forget(self, correlation_id: str) -> None:
        with self._pending_lock:
            self._pending.pop(correlation_id, None)

    def _sweep(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 1.0
        with self._pending_lock:
            for correlation_id in [c for c, (_, expires) in self._pending.items()
                                   if expires < now]:
                del self._pending[correlation_id]

    def close(self) -> None:
        self._stopped.set()
        self._reset_producer()
        self._thread.join(timeout=3)

    # -- plumbing -----------------------------------------------------------------------
    def _get_producer(self) -> Producer:
        if self._producer is None:
            self._publish_conn = Connection(self.amqp_uri)
            self._producer = Producer(self._publish_conn.default_channel)
        return self._producer

    def _reset_producer(self) -> None:
        with self._publish_lock:
            if self._publish_conn is not None:
                try:
                    self._publish_conn.release()
                except Exception:  # already broken; nothing to release
                    pass
            self._publish_conn = self._producer = None

    def _on_reply(self, body: Any, message: Any) -> None:
        correlation_id = message.properties.get("correlation_id")
        with self._pending_lock:
            entry = self._pending.pop(correlation_id, None)
        if entry is not None and isinstance(body, dict):
            entry[0]._resolve(body)

    def _consume_forever(self) -> None:
        while not self._stopped.is_set():
            try:
                with Connection(self.amqp_uri, heartbeat=30) as conn, \
                        Consumer(conn.channel(), queues=[self.reply_queue],
                                 callbacks=[self._on_reply], accept=["json"],
                                 # the queue is exclusive: it goes with this connection, so
                                 # an ack per reply would guard nothing (one write saved)
                                 no_ack=True):
                    self._ready.set()
                    while not self._stopped.is_set():
                        try:
                            conn.drain_events(timeout=0.25)
                        except TimeoutError:
                            conn.heartbeat_check()
                        self._sweep()
            except Exception as exc:  # broker restart: reconnect, re-declare the queue
                self._ready.clear()
                if not self._stopped.is_set():
                    log.warning("reply consumer lost the broker (%s); reconnecting", exc)
                    self._stopped.wait(1.0)
