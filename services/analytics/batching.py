"""Events applied in batches: many deliveries, one transaction, one commit.

The projection's cost per event is mostly not its own SQL but what surrounds it: a worker,
a transaction, a commit (a WAL flush) for each event.  ``batch_consumes`` is the kit's
``consumes`` (envelope parsed, versions checked, each event claimed in the kit inbox in the
same transaction as its effect) for up to ``BATCH_SIZE`` deliveries at once: the messages
are acknowledged only after the one commit, so a crash or an error redelivers the whole
batch and the inbox makes each event count once all the same.  A batch in which one event
is refused for good (a ``CrmError``) is rolled back and applied again one event per
transaction, so that only that event is recorded as rejected.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any

import eventlet
from nameko.events import EventHandler
from nameko.exceptions import ContainerBeingKilled
from nameko.messaging import QueueConsumer
from sqlalchemy.dialects.postgresql import insert

from services.kit.entrypoints import REDELIVERY_DELAY, _apply_once, _work
from services.kit.envelope import Envelope
from services.kit.errors import CrmError, ValidationError

log = logging.getLogger("crm.events")

BATCH_SIZE = 200
# how long a first delivery waits for company before its batch is applied (seconds)
LINGER_SECONDS = 0.02


class BatchQueueConsumer(QueueConsumer):
    """nameko's queue consumer with room for a whole batch unacknowledged per queue (the
    plain one allows ``max_workers`` messages, which would cap a batch at that)."""

    @property
    def prefetch_count(self) -> int:
        return BATCH_SIZE


class BatchEventHandler(EventHandler):  # type: ignore[misc]
    queue_consumer = BatchQueueConsumer()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: list[tuple[Any, Any]] = []
        self._timer = False

    def handle_message(self, body: Any, message: Any) -> None:
        self._waiting.append((body, message))
        if len(self._waiting) >= BATCH_SIZE:
            self._flush()
        elif not self._timer:
            self._timer = True
            self.container.spawn_managed_thread(self._flush_later)

    def _flush_later(self) -> None:
        eventlet.sleep(LINGER_SECONDS)
        self._timer = False
        self._flush()

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        if not batch:
            return
        messages = [m for _, m in batch]
        try:
            self.container.spawn_worker(
                self, ([b for b, _ in batch],), {},
                context_data=self.unpack_message_headers(messages[0]),
                handle_result=partial(self._handled, messages))
        except ContainerBeingKilled:
            for message in messages:
                self.queue_consumer.requeue_message(message)

    def _handled(self, messages: list[Any], worker_ctx: Any, result: Any = None,
                 exc_info: Any = None) -> tuple[Any, Any]:
        for message in messages:
            self.handle_message_processed(message, result, exc_info)
        return result, exc_info


def _envelopes(bodies: Iterable[Any], known: frozenset[int], source: str,
               event_type: str) -> list[Envelope]:
    found = []
    for body in bodies:
        try:
            envelope = Envelope.parse(body)
        except ValidationError as exc:
            log.error("dropping malformed %s.%s event: %s", source, event_type, exc)
            continue
        if envelope.version not in known:
            log.warning("ignoring %s v%s (%s): this handler knows versions %s",
                        envelope.type, envelope.version, envelope.event_id, sorted(known))
            continue
        found.append(envelope)
    # one order of the deals' rows for every batch, so that two batches do not deadlock
    return sorted(found, key=_deal_of)


def _deal_of(envelope: Envelope) -> int:
    try:
        return int(envelope.data.get("deal_id") or 0)
    except (TypeError, ValueError):
        return 0


def _claim_all(session: Any, inbox: Any, handler: str, envelopes: list[Envelope]
               ) -> set[str]:
    """``claim_inbox`` for a whole batch in one statement: the ids this transaction
    claimed (an event already applied, or a second copy in the batch, is not new)."""
    if not envelopes:
        return set()
    stmt = (insert(inbox).values([{"handler": handler, "event_id": e.event_id,
                                   "type": e.type} for e in envelopes])
            .on_conflict_do_nothing().returning(inbox.c.event_id))
    return {str(row[0]) for row in session.execute(stmt)}


def batch_consumes(source_service: str, event_type: str, versions: Iterable[int] = (1,),
                   deferring: Callable[[Any], AbstractContextManager[None]] | None = None
                   ) -> Any:
    """``consumes`` for a handler of one event that may be applied many to a transaction:
    ``fn(self, envelope)`` is called for each event of a batch, the commit is one.
    ``deferring(session)``: a context the batch's events are applied within (for work
    the handler leaves to the end of the batch)."""
    known = frozenset(versions)

    def decorate(fn: Callable[[Any, Envelope], None]) -> Any:
        def handler(self: Any, bodies: list[Any]) -> None:
            envelopes = _envelopes(bodies, known, source_service, event_type)
            work = _work(self)
            if work is None:
                raise TypeError(f"{type(self).__name__} needs `db = UnitOfWork(...)`")
            inbox = work.provider.metadata.tables["inbox"]
            name = f"{self.name}.{fn.__name__}"
            try:
                claimed = _claim_all(work.session, inbox, name, envelopes)
                with (deferring(work.session) if deferring else nullcontext()):
                    for envelope in envelopes:
                        if envelope.event_id in claimed:
                            claimed.discard(envelope.event_id)  # a copy in the same batch
                            fn(self, envelope)
                work.commit()
            except CrmError:
                # one event is refused for good: apply them one by one, as ``consumes``
                # does, so that the others still count and that one is recorded
                work.session.rollback()
                for envelope in envelopes:
                    _apply_once(self, fn, envelope)
            except Exception:
                work.session.rollback()
                eventlet.sleep(REDELIVERY_DELAY)
                raise

        handler.__name__ = handler.__qualname__ = fn.__name__
        handler.__doc__ = fn.__doc__
        return BatchEventHandler.decorator(source_service, event_type,
                                           requeue_on_error=True)(handler)

    return decorate
