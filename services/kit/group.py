"""Group commit for green threads: what concurrent callers ask at the same moment is done
as one batch (one multi-row statement, one commit, one RPC) by one of them, and every
caller gets its own answer or its own error.

No caller waits for a timer: the first caller leads and runs the batch at once; whoever
arrives while a batch is under way is taken by the next one.  A leader whose own item is
done hands the lead to the first caller still waiting, so nobody's answer is held back to
serve others, and the batch always runs in a caller's own green thread (with that caller's
context: its RPC proxies, its database provider).  Cooperative scheduling (eventlet) is
what makes the bookkeeping safe without locks: nothing here yields but ``Event.wait`` and
the batch itself."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from eventlet.event import Event

Item = TypeVar("Item")
_LEAD = object()


class Interrupted(RuntimeError):
    """The green thread running a batch was killed or timed out before it finished."""


class _Slot(Generic[Item]):
    __slots__ = ("context", "event", "item", "outcome")

    def __init__(self, item: Item, context: Any) -> None:
        self.item = item
        self.context = context
        self.event: Event = Event()
        self.outcome: Any = _LEAD


class Group(Generic[Item]):
    """``group(item, context)`` -> this item's result.  ``run(items, context)`` does a
    batch and returns one outcome per item, in order: a result, or an exception instance
    (raised to that caller alone).  An exception out of ``run`` itself is every item's."""

    def __init__(self, run: Callable[[list[Item], Any], Sequence[Any]], limit: int = 200
                 ) -> None:
        self.run = run
        self.limit = limit
        self.waiting: list[_Slot[Item]] = []
        self.leading = False
        self.batches = 0  # for tests and the bench: how many batches ran

    def __call__(self, item: Item, context: Any = None) -> Any:
        slot = _Slot(item, context)
        self.waiting.append(slot)
        if self.leading:
            try:
                outcome = slot.event.wait()
            except BaseException:  # killed while waiting: leave the line, pass on a lead
                if slot in self.waiting:
                    self.waiting.remove(slot)
                    if slot.event.ready():
                        self._hand_on(slot)
                raise
            if outcome is not _LEAD:
                return _unwrap(outcome)
        self.leading = True
        try:
            while slot.outcome is _LEAD:
                batch = self.waiting[:self.limit]
                del self.waiting[:self.limit]
                self._run(batch, slot.context)
        finally:
            self._hand_on(slot)
        return _unwrap(slot.outcome)

    def _run(self, batch: list[_Slot[Item]], context: Any) -> None:
        self.batches += 1
        interrupted: BaseException | None = None
        try:
            outcomes = list(self.run([s.item for s in batch], context))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(outcomes)} outcomes")
        except Exception as exc:
            outcomes = [exc] * len(batch)
        except BaseException as exc:  # killed or timed out: the others must not hang
            interrupted = exc
            outcomes = [Interrupted(f"the batch was interrupted: {exc!r}")] * len(batch)
        for slot, outcome in zip(batch, outcomes, strict=True):
            slot.outcome = outcome
            if not slot.event.ready():  # a leader's own event already holds its lead
                slot.event.send(outcome)
        if interrupted is not None:
            raise interrupted

    def _hand_on(self, own: _Slot[Item]) -> None:
        if own in self.waiting:  # the leader itself was interrupted before its turn
            self.waiting.remove(own)
        if self.waiting:
            self.waiting[0].event.send(_LEAD)  # it stays first in line and takes the lead
        else:
            self.leading = False


def _unwrap(outcome: Any) -> Any:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
