"""Entrypoint decorators every service uses instead of nameko's bare ones.

``rpc``: commits the unit of work before the reply is sent, answers JSON-safe values, and
raises typed kit errors.  ``consumes``: parses the event envelope, skips an event this
handler already applied (inbox), commits effect and inbox row together before the message
is acked, and lets a transient failure be redelivered.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

import eventlet
from nameko.events import event_handler
from nameko.rpc import Rpc, RpcConsumer

from services.kit import idempotency, permissions
from services.kit.dependencies import Work
from services.kit.envelope import Envelope, json_safe
from services.kit.errors import ERROR_TYPES, CrmError, RemoteTimeout, ValidationError
from services.kit.messaging import claim_inbox

log = logging.getLogger("crm.events")

REDELIVERY_DELAY = 1.0  # seconds before a failed event goes back to the queue


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


class SturdyRpcConsumer(RpcConsumer):
    """nameko's RPC consumer, except that a reply which cannot be sent (the broker is
    restarting) is logged and dropped instead of killing the whole service.  The caller's
    deadline already covers a lost reply; the consumer reconnects by itself."""

    def handle_result(self, message: Any, result: Any, exc_info: Any) -> Any:
        try:
            return super().handle_result(message, result, exc_info)
        except Exception as exc:
            log.warning("could not send the reply to %s (%s: %s); the caller's deadline "
                        "covers it", message.properties.get("reply_to"), type(exc).__name__, exc)
            try:
                self.queue_consumer.ack_message(message)
            except Exception:  # the channel went with the broker: it will redeliver
                pass
            return result, exc_info


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

        return event_handler(source_service, event_type, requeue_on_error=True)(handler)

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
