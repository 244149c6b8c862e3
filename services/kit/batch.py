"""``@consumes_batch``: many deliveries of one event type applied in one transaction.

A consumer's cost per event is mostly not its own SQL but what surrounds it: a worker, a
transaction, a commit (a WAL flush) for each event.  ``consumes_batch`` keeps every promise
of ``consumes`` for up to ``BATCH_SIZE`` deliveries at once:

- the envelope is parsed and its version checked (a malformed or unknown one is logged and
  acked, as ``consumes`` does);
- each event is claimed in the inbox in the same transaction as its effect, all of them in
  one statement, so an event already applied (or a second copy in the same batch) is not
  handed to the handler again;
- the handler gets the batch's new events as a list and may apply them in one statement;
- the messages are acknowledged only after the one commit: a crash redelivers the batch and
  the inbox makes each event count once all the same;
- a batch that fails is rolled back and applied again one event per transaction, so that a
  poison event is isolated: a ``CrmError`` is recorded as rejected in the inbox and acked,
  any other error (or a ``RemoteTimeout``) requeues that delivery alone (after a back-off),
  the others commit and are acked.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import eventlet
from nameko.events import EventHandler
from nameko.exceptions import ContainerBeingKilled
from sqlalchemy.dialects.postgresql import insert

from services.kit.consuming import SturdyQueueConsumer
from services.kit.dependencies import Work
from services.kit.entrypoints import REDELIVERY_DELAY, accepted, rejection
from services.kit.envelope import Envelope
from services.kit.errors import CrmError, RemoteTimeout

log = logging.getLogger("crm.events")

BATCH_SIZE = 200
# how long a first delivery waits for company before its batch is applied (seconds): short
# enough that a lone event is not noticeably late, long enough to gather a burst
LINGER_SECONDS = 0.02

Handler = Callable[[Any, list[Envelope]], None]


class BatchQueueConsumer(SturdyQueueConsumer):
    """The kit's queue consumer with room for a whole batch unacknowledged per queue (the
    plain one allows ``max_workers`` messages, which would cap a batch at that)."""

    @property
    def prefetch_count(self) -> int:
        return BATCH_SIZE


class BatchEventHandler(EventHandler):  # type: ignore[misc]
    """Gathers deliveries and hands them to one worker; acks or requeues each delivery by
    what the worker reports for it."""

    queue_consumer = BatchQueueConsumer()

    def __init__(self, *args: Any, size: int = BATCH_SIZE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.size = max(1, min(size, BATCH_SIZE))
        self._waiting: list[tuple[Any, Any]] = []
        self._timer = False

    def handle_message(self, body: Any, message: Any) -> None:
        self._waiting.append((body, message))
        if len(self._waiting) >= self.size:
            self._flush()
        elif not self._timer:
            self._timer = True
            self.container.spawn_managed_thread(self._flush_later)

    def _flush_later(self) -> None:
        eventlet.sleep(LINGER_SECONDS)
        self._timer = False
        self._flush()

    def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:self.size], self._waiting[self.size:]
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
        # ``result``: the positions of the deliveries to requeue (None: all went well)
        failed = set(result or ()) if exc_info is None else set(range(len(messages)))
        for position, message in enumerate(messages):
            if position in failed:
                self.queue_consumer.requeue_message(message)
            else:
                self.queue_consumer.ack_message(message)
        return result, exc_info


def _parsed(bodies: Iterable[Any], known: frozenset[int], source: str, event_type: str
            ) -> list[tuple[int, Envelope]]:
    """(position in the batch, envelope) of each delivery this handler can apply."""
    found = []
    for position, body in enumerate(bodies):
        envelope = accepted(body, known, source, event_type)
        if envelope is not None:
            found.append((position, envelope))
    return found


def claim_all(session: Any, inbox: Any, handler: str, envelopes: list[Envelope]
              ) -> list[Envelope]:
    """Record a batch as applied by ``handler`` in one statement; returns the events this
    transaction claimed, in their order, each once (one applied before, or a second copy
    in the batch, is left out).  A concurrent duplicate waits on the primary key, as with
    ``claim_inbox``; the rows go in event id order, so two batches sharing events (a
    redelivery beside a fresh copy) wait for each other rather than deadlock."""
    if not envelopes:
        return []
    rows = {e.event_id: {"handler": handler, "event_id": e.event_id, "type": e.type}
            for e in envelopes}
    stmt = (insert(inbox).values([rows[key] for key in sorted(rows)])
            .on_conflict_do_nothing().returning(inbox.c.event_id))
    claimed = {str(row[0]) for row in session.execute(stmt)}
    fresh = []
    for envelope in envelopes:
        if envelope.event_id in claimed:
            claimed.discard(envelope.event_id)
            fresh.append(envelope)
    return fresh


def _apply_alone(service: Any, fn: Handler, work: Work, inbox: Any, name: str,
                 envelope: Envelope) -> bool:
    """One event in its own transaction, as ``consumes`` applies it; False: requeue it."""
    try:
        if claim_all(work.session, inbox, name, [envelope]):
            fn(service, [envelope])
        work.commit()
        return True
    except RemoteTimeout:
        work.session.rollback()  # another service was slow: worth another try
        return False
    except CrmError as exc:
        # a permanent refusal: retrying would fail the same way; record it and move on
        work.session.rollback()
        claim_all(work.session, inbox, name, [envelope])
        work.session.execute(inbox.update()
                             .where(inbox.c.handler == name,
                                    inbox.c.event_id == envelope.event_id)
                             .values(rejected=rejection(exc)[:2000]))
        work.commit()
        log.error("%s rejected %s %s: %s", name, envelope.type, envelope.event_id, exc)
        return True
    except Exception:
        work.session.rollback()
        log.exception("%s failed on %s %s; it will be redelivered", name, envelope.type,
                      envelope.event_id)
        return False


def consumes_batch(source_service: str, event_type: str, versions: Iterable[int] = (1,),
                   size: int = BATCH_SIZE) -> Any:
    """``consumes`` for a handler that applies many events of one type at once:
    ``fn(self, events)`` gets the new events of a batch (at most ``size``, in delivery
    order, none seen before) and the kit commits once for all of them."""
    known = frozenset(versions)

    def decorate(fn: Handler) -> Any:
        def handler(self: Any, bodies: list[Any]) -> list[int]:
            work = getattr(self, "db", None)
            if not isinstance(work, Work):
                raise TypeError(f"{type(self).__name__} needs `db = UnitOfWork(...)` to "
                                "consume events")
            parsed = _parsed(bodies, known, source_service, event_type)
            inbox = work.provider.metadata.tables["inbox"]
            name = f"{self.name}.{fn.__name__}"
            try:
                fresh = claim_all(work.session, inbox, name, [e for _, e in parsed])
                if fresh:
                    fn(self, fresh)
                work.commit()
                return []
            except Exception as exc:
                work.session.rollback()
                transient = isinstance(exc, RemoteTimeout) or not isinstance(exc, CrmError)
                if len(parsed) == 1 and transient:
                    eventlet.sleep(REDELIVERY_DELAY)
                    raise
                log.warning("%s: a batch of %d failed (%s: %s); applying its events one by "
                            "one", name, len(parsed), type(exc).__name__, exc)
            failed = [position for position, envelope in parsed
                      if not _apply_alone(self, fn, work, inbox, name, envelope)]
            if failed:
                eventlet.sleep(REDELIVERY_DELAY)
            return failed

        handler.__name__ = handler.__qualname__ = fn.__name__
        handler.__doc__ = fn.__doc__
        return BatchEventHandler.decorator(source_service, event_type, size=size,
                                           requeue_on_error=True)(handler)

    return decorate
