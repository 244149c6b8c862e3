"""Entrypoint decorators every service uses instead of nameko's bare ones.

``rpc``: commits the unit of work before the reply is sent, answers JSON-safe values, and
raises typed kit errors.  ``consumes``: parses the event envelope, skips an event this
handler already applied (inbox), commits effect and inbox row together before the message
is acked, and lets a transient failure be redelivered.
"""
from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

import eventlet
import kombu.serialization
from eventlet.semaphore import Semaphore
from kombu import Connection, Producer
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.events import EventHandler
from nameko.exceptions import UnserializableValueError, serialize
from nameko.rpc import Responder, Rpc, RpcConsumer, get_rpc_exchange

from services.kit import idempotency, permissions
from services.kit.consuming import SturdyQueueConsumer
from services.kit.contract.rpc import EXCLUSIVE_REPLY_QUEUE_HEADER
from services.kit.db import readable
from services.kit.dependencies import Work
from services.kit.envelope import Envelope, json_safe
from services.kit.errors import ERROR_TYPES, CrmError, RemoteTimeout, ValidationError
from services.kit.messaging import claim_inbox

log = logging.getLogger("crm.events")

REDELIVERY_DELAY = 1.0  # seconds before a failed event goes back to the queue
TRANSIENT_DELIVERY_MODE = 1  # AMQP delivery mode 1: kept in memory only


def _work(service: Any) -> Work | None:
    work = getattr(service, "db", None)
    return work if isinstance(work, Work) else None


def public_error(exc: CrmError) -> CrmError:
    """A service's own CrmError subclass travels as its nearest kit type, which every
    caller can rebuild."""
    for cls in type(exc).__mro__:
        if f"{cls.__module__}.{cls.__name__}" in ERROR_TYPES:
            if cls is type(exc):
                return exc
            return cls(exc.message, exc.details)  # type: ignore[call-arg]
    return exc


class SturdyEventHandler(EventHandler):  # type: ignore[misc]
    queue_consumer = SturdyQueueConsumer()


class SturdyRpcConsumer(RpcConsumer):
    """nameko's RPC consumer, with replies sent the way their queue needs.

    A caller whose reply queue is exclusive to its connection (the gateway, which says so
    in the ``EXCLUSIVE_REPLY_QUEUE_HEADER`` header) gets its reply
    * on one connection kept open for the service's replies (``Replies``), not a producer
      taken from kombu's pool by a new ``Connection`` for every call;
    * without a publisher confirm, and transient: a broker restart takes that queue and
      everything in it, so a confirm would buy a broker round trip per call without making
      anything durable.  A reply lost on the way is covered, as it always was, by the
      caller's deadline; the request is acked after the reply was handed to the socket,
      and its effect was committed before (a redelivered request would run it twice);
    * serialised once (nameko dumped the result to check it, then again to send it).
    Any other caller (nameko's proxies: their reply queues are durable) gets the reply as
    nameko sends it, persistent and confirmed (docs/decisions/0018).

    A reply which cannot be sent (the broker is restarting) is logged and dropped instead
    of killing the whole service; the consumer reconnects by itself."""

    queue_consumer = SturdyQueueConsumer()

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        self.replies = Replies(config[AMQP_URI_CONFIG_KEY], ssl=config.get(AMQP_SSL_CONFIG_KEY),
                               login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
        self.reply_exchange = get_rpc_exchange(config)
        self.by_routing_key: dict[str, Any] = {}

    def get_provider_for_method(self, routing_key: str) -> Any:
        """The entrypoint a request names: looked up once per routing key (nameko formats
        and compares the key of every entrypoint of the service on every call)."""
        provider = self.by_routing_key.get(routing_key)
        if provider is None or provider not in self._providers:
            provider = super().get_provider_for_method(routing_key)  # or MethodNotFound
            self.by_routing_key[routing_key] = provider
        return provider

    def stop(self) -> None:
        super().stop()
        self.replies.close()

    def kill(self) -> None:
        self.replies.close()

    def handle_result(self, message: Any, result: Any, exc_info: Any) -> Any:
        try:
            if (message.headers or {}).get(EXCLUSIVE_REPLY_QUEUE_HEADER):
                result, exc_info = self._reply(message, result, exc_info)
            else:
                result, exc_info = self._confirmed_reply(message, result, exc_info)
        except Exception as exc:
            log.warning("could not send the reply to %s (%s: %s); the caller's deadline "
                        "covers it", message.properties.get("reply_to"), type(exc).__name__, exc)
        self.queue_consumer.ack_message(message)
        return result, exc_info

    def _confirmed_reply(self, message: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        config = self.container.config
        responder = Responder(config[AMQP_URI_CONFIG_KEY], self.reply_exchange,
                              config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER), message,
                              ssl=config.get(AMQP_SSL_CONFIG_KEY),
                              login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
        return responder.send_response(result, exc_info)  # type: ignore[no-any-return]

    def _reply(self, message: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        """nameko's reply (``Responder.send_response``): ``{"result", "error"}`` encoded as
        the request was; a result that cannot be encoded travels as
        ``UnserializableValueError``."""
        error = serialize(exc_info[1]) if exc_info is not None else None
        serializer = kombu.serialization.registry.type_to_name[message.properties["content_type"]]
        try:
            encoded = kombu.serialization.dumps({"result": result, "error": error}, serializer)
        except Exception:
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))
            result = None
            encoded = kombu.serialization.dumps({"result": None, "error": error}, serializer)
        reply_to = message.properties.get("reply_to")
        if reply_to:  # a request without a reply queue asked for no answer
            content_type, encoding, body = encoded
            self.replies.send(body, content_type=content_type, content_encoding=encoding,
                              exchange=self.reply_exchange, routing_key=reply_to,
                              correlation_id=message.properties.get("correlation_id"))
        return result, exc_info


class Replies:
    """The one broker connection a service sends its RPC replies on.

    Kept open between calls; before each reply a look at its socket (a broker that closed
    the connection left something to read: its close frame or the end of the stream) tells
    a dead connection from a live one without a round trip, and a dead one is replaced.
    Green threads take turns on it (a frame written by two at once would be garbage)."""

    def __init__(self, amqp_uri: str, ssl: Any = None, login_method: Any = None) -> None:
        self.amqp_uri = amqp_uri
        self.ssl = ssl
        self.login_method = login_method
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._lock = Semaphore()

    def send(self, body: Any, **properties: Any) -> None:
        with self._lock:
            fresh = self._producer is None or not self._alive()
            if fresh:
                self._open()
            try:
                self._publish(body, properties)
            except Exception:
                self._drop()
                if fresh:
                    raise
                # a connection that looked alive but was not: once more on a new one
                self._open()
                self._publish(body, properties)

    def _publish(self, body: Any, properties: dict[str, Any]) -> None:
        assert self._producer is not None
        self._producer.publish(body, delivery_mode=TRANSIENT_DELIVERY_MODE, retry=False,
                               **properties)

    def _alive(self) -> bool:
        connection = self._connection
        if connection is None or not connection.connected:
            return False
        try:
            return not readable(connection.connection.sock.fileno())
        except Exception:  # no socket any more
            return False

    def _open(self) -> None:
        self._drop()
        self._connection = Connection(self.amqp_uri, ssl=self.ssl,
                                      login_method=self.login_method)
        self._producer = Producer(self._connection.default_channel)

    def _drop(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken; nothing to release
                pass

    def close(self) -> None:
        with self._lock:
            self._drop()


class SturdyRpc(Rpc):
    rpc_consumer = SturdyRpcConsumer()


def rpc(fn: Callable[..., Any]) -> Any:
    @functools.wraps(fn)
    def entrypoint(self: Any, *args: Any, **kwargs: Any) -> Any:
        key = kwargs.pop(idempotency.KWARG, None)
        kwargs.pop(permissions.KWARG, None)  # read by the Permissions dependency
        work = _work(self)
        table = work.provider.metadata.tables.get("idempotent_calls") if work else None
        try:
            if key and table is not None and work is not None:
                return _once(self, fn, work, table, str(key)[:idempotency.KEY_MAX], args,
                             kwargs)
            result = fn(self, *args, **kwargs)
            if work is not None:
                work.commit()
        except CrmError as exc:
            raise public_error(exc) from None
        return json_safe(result)

    return SturdyRpc.decorator(expected_exceptions=(CrmError,))(entrypoint)


def _once(service: Any, fn: Callable[..., Any], work: Work, table: Any, key: str,
          args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``fn`` once per key: its result is stored with its effect in one transaction."""
    done, stored = idempotency.claim(work.session, table, key, fn.__name__)
    if done:
        work.session.rollback()
        log.info("%s.%s: repeat of %s answered from the first call", service.name,
                 fn.__name__, key)
        return stored
    result = json_safe(fn(service, *args, **kwargs))
    idempotency.remember(work.session, table, key, fn.__name__, result)
    work.commit()
    return result


def accepted(body: Any, known: frozenset[int], source_service: str, event_type: str
             ) -> Envelope | None:
    """The delivery's envelope, or None (logged) when it is malformed or of a version the
    handler does not know: acked either way, a redelivery would not change it."""
    try:
        envelope = Envelope.parse(body)
    except ValidationError as exc:
        log.error("dropping malformed %s.%s event: %s", source_service, event_type, exc)
        return None
    if envelope.version not in known:
        log.warning("ignoring %s v%s (%s): this handler knows versions %s",
                    envelope.type, envelope.version, envelope.event_id, sorted(known))
        return None
    return envelope


def consumes(source_service: str, event_type: str, versions: Iterable[int] = (1,)) -> Any:
    known = frozenset(versions)

    def decorate(fn: Callable[[Any, Envelope], None]) -> Any:
        @functools.wraps(fn)
        def handler(self: Any, body: Any) -> None:
            envelope = accepted(body, known, source_service, event_type)
            if envelope is not None:
                _apply_once(self, fn, envelope)

        return SturdyEventHandler.decorator(source_service, event_type,
                                            requeue_on_error=True)(handler)

    return decorate


def _apply_once(service: Any, fn: Callable[[Any, Envelope], None], envelope: Envelope) -> None:
    work = _work(service)
    if work is None:
        raise TypeError(f"{type(service).__name__} needs `db = UnitOfWork(...)` to consume events")
    inbox = work.provider.metadata.tables["inbox"]
    name = f"{service.name}.{fn.__name__}"
    try:
        if not claim_inbox(work.session, inbox, name, envelope):
            work.session.rollback()
            log.info("skipping duplicate %s %s in %s", envelope.type, envelope.event_id, name)
            return
        fn(service, envelope)
        work.commit()
    except RemoteTimeout:
        _back_off(work)
        raise
    except CrmError as exc:
        # A permanent refusal: retrying would fail the same way.  Record it and move on.
        work.session.rollback()
        claim_inbox(work.session, inbox, name, envelope)
        work.session.execute(inbox.update()
                             .where(inbox.c.handler == name, inbox.c.event_id == envelope.event_id)
                             .values(rejected=rejection(exc)[:2000]))
        work.commit()
        log.error("%s rejected %s %s: %s", name, envelope.type, envelope.event_id, exc)
    except Exception:
        _back_off(work)
        raise


def _back_off(work: Work) -> None:
    work.session.rollback()
    eventlet.sleep(REDELIVERY_DELAY)


def rejection(exc: CrmError) -> str:
    """What an operator reads about a refused event: the field first (the messages are
    for people and no longer name it), then the message."""
    field = getattr(exc, "field", None)
    return f"{field}: {exc}" if field else str(exc)
