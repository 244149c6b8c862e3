"""Events consumed in batches: the busiest event (``payment_received``) arrives by the
hundred a second, and handled one by one each costs its own inbox insert, reads, writes
and commit.  Here the messages that arrived while earlier batches were being written are
handled together — one inbox statement, one read, one write, one commit — and acked
only after that commit, so nothing is lost and the inbox still applies each event once.

A batch that fails is rolled back and its events are applied one at a time, exactly as
``services.kit.entrypoints.consumes`` does (same inbox handler name): a permanent refusal
is then recorded for that event alone, and any other failure sends the whole batch back
to the queue, where the inbox skips the events already applied.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from nameko.events import EventHandler
from nameko.exceptions import ContainerBeingKilled
from sqlalchemy import text

from services.kit.entrypoints import _apply_once, _work
from services.kit.envelope import Envelope
from services.kit.errors import ValidationError

log = logging.getLogger("crm.events")

# One statement text for any batch size (prepared once by PostgreSQL).
_CLAIM = text("""
INSERT INTO inbox (handler, event_id, type)
SELECT :handler, e.id, e.type FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[]))
    AS e(id, type)
ON CONFLICT DO NOTHING RETURNING event_id""")

IN_FLIGHT = 2  # batches written at once: one commits while the next is read and built


class BatchEventHandler(EventHandler):
    """A nameko event handler whose method gets a list of message bodies.

    At most ``IN_FLIGHT`` batches run at once; a message arriving meanwhile waits for
    the next batch, which takes everything that waited.  Under light load a batch is one
    message, handled at once; under heavy load batches grow up to the prefetch count
    (the container's ``max_workers``).  The queue is the one nameko's ``event_handler``
    would declare for the same method, so switching between the two loses nothing.
    """

    def setup(self) -> None:
        super().setup()
        self._waiting: list[tuple[Any, Any]] = []
        self._in_flight = 0

    def handle_message(self, body: Any, message: Any) -> None:
        self._waiting.append((body, message))
        self._start()

    def _start(self) -> None:
        while self._waiting and self._in_flight < IN_FLIGHT:
            batch, self._waiting = self._waiting, []
            messages = [m for _, m in batch]
            self._in_flight += 1
            try:
                self.container.spawn_worker(
                    self, ([b for b, _ in batch],), {},
                    context_data=self.unpack_message_headers(messages[0]),
                    handle_result=functools.partial(self._done, messages))
            except ContainerBeingKilled:
                self._in_flight -= 1
                for message in messages:
                    self.queue_consumer.requeue_message(message)

    def _done(self, messages: list[Any], worker_ctx: Any, result: Any = None,
              exc_info: Any = None) -> tuple[Any, Any]:
        for message in messages:
            self.handle_message_processed(message, result, exc_info)
        self._in_flight -= 1
        if self._waiting:
            # not from this worker's own thread: the pool may be full until it ends
            self.container.spawn_managed_thread(self._start)
        return result, exc_info


def consumes_batch(source_service: str, event_type: str, versions: tuple[int, ...] = (1,)
                   ) -> Callable[[Callable[[Any, list[Envelope]], None]], Any]:
    """Like ``consumes``, for a method that takes a list of envelopes: each event of the
    list is new to this handler (its inbox row is written in the same transaction)."""
    known = frozenset(versions)

    def decorate(fn: Callable[[Any, list[Envelope]], None]) -> Any:
        def one(service: Any, envelope: Envelope) -> None:
            fn(service, [envelope])

        one.__name__ = fn.__name__  # the inbox knows the handler by this name

        @functools.wraps(fn)
        def handler(self: Any, bodies: list[Any]) -> None:
            envelopes = _parsed(bodies, known, f"{source_service}.{event_type}")
            if not envelopes:
                return
            work = _work(self)
            if work is None:
                raise TypeError(f"{type(self).__name__} needs `db = UnitOfWork(...)`")
            try:
                fresh = _claim(work, f"{self.name}.{fn.__name__}", envelopes)
                if fresh:
                    fn(self, fresh)
                work.commit()
                return
            except Exception as exc:
                work.session.rollback()
                if len(envelopes) == 1:
                    log.info("batch of one %s failed (%s): applying it alone", event_type, exc)
                else:
                    log.warning("batch of %d %s failed (%s: %s): applying them one by one",
                                len(envelopes), event_type, type(exc).__name__, exc)
            for envelope in envelopes:
                _apply_once(self, one, envelope)

        return BatchEventHandler.decorator(source_service, event_type,
                                           requeue_on_error=True)(handler)

    return decorate


def _parsed(bodies: list[Any], known: frozenset[int], name: str) -> list[Envelope]:
    """The envelopes of the versions this handler knows, each event once."""
    found: dict[str, Envelope] = {}
    for body in bodies:
        try:
            envelope = Envelope.parse(body)
        except ValidationError as exc:
            log.error("dropping malformed %s event: %s", name, exc)
            continue
        if envelope.version not in known:
            log.warning("ignoring %s v%s (%s): this handler knows versions %s",
                        envelope.type, envelope.version, envelope.event_id, sorted(known))
            continue
        found.setdefault(envelope.event_id, envelope)
    return list(found.values())


def _claim(work: Any, handler: str, envelopes: list[Envelope]) -> list[Envelope]:
    """The events not yet applied by ``handler``, their inbox rows written (in event id
    order, so two batches sharing events wait for each other rather than deadlock)."""
    ordered = sorted(envelopes, key=lambda e: e.event_id)
    claimed = {str(row[0]) for row in work.session.execute(_CLAIM, {
        "handler": handler, "ids": [e.event_id for e in ordered],
        "types": [e.type for e in ordered]})}
    skipped = len(envelopes) - len(claimed)
    if skipped:
        log.info("skipping %d duplicate event(s) in %s", skipped, handler)
    return [e for e in envelopes if e.event_id in claimed]
