"""Group calls for the gateway's threads: what concurrent requests ask of a service at the
same moment goes as one RPC, and every request gets its own answer or its own error.

The threaded twin of ``services.kit.group`` (which is for green threads and relies on
cooperative scheduling; here a lock keeps the line).  No caller waits for a timer: the
first caller leads and sends at once; whoever arrives while that call is under way goes
with the next one.  A leader whose own answer is in hands the lead to the first caller
still waiting, so nobody's answer is held back to serve others, and each call runs in a
caller's own thread (with its request context: its request id travels as the call id)."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
_LEAD = object()


class _Slot(Generic[Item]):
    __slots__ = ("done", "item", "outcome")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.done = threading.Event()  # set with an outcome, or with the lead
        self.outcome: Any = _LEAD


class ThreadGroup(Generic[Item]):
    """``group(item)`` -> this item's result.  ``run(items)`` does a batch and returns one
    outcome per item, in order: a result, or an exception instance (raised to that
    caller alone).  An exception out of ``run`` itself is every item's."""

    def __init__(self, run: Callable[[list[Item]], Sequence[Any]], limit: int = 50) -> None:
        self.run = run
        self.limit = limit
        self._lock = threading.Lock()
        self._waiting: list[_Slot[Item]] = []
        self._leading = False
        self.batches = 0  # for tests and the bench: how many calls went

    def __call__(self, item: Item) -> Any:
        slot = _Slot(item)
        with self._lock:
            self._waiting.append(slot)
            follow = self._leading
            self._leading = True
        if follow:
            slot.done.wait()  # the leader always finishes: its call has a deadline
            if slot.outcome is not _LEAD:
                return _unwrap(slot.outcome)
        try:
            while slot.outcome is _LEAD:
                with self._lock:
                    batch = self._waiting[:self.limit]
                    del self._waiting[:self.limit]
                self._run(batch)
        finally:
            self._hand_on(slot)
        return _unwrap(slot.outcome)

    def _run(self, batch: list[_Slot[Item]]) -> None:
        self.batches += 1
        try:
            outcomes = list(self.run([s.item for s in batch]))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(outcomes)} outcomes")
        except Exception as exc:
            outcomes = [exc] * len(batch)
        except BaseException as exc:  # the thread is going away: nobody may hang on it
            for s in batch:
                s.outcome = RuntimeError(f"the batch was interrupted: {exc!r}")
                s.done.set()
            raise
        for s, outcome in zip(batch, outcomes, strict=True):
            s.outcome = outcome
            s.done.set()

    def _hand_on(self, own: _Slot[Item]) -> None:
        with self._lock:
            if own in self._waiting:  # the leader was interrupted before its turn
                self._waiting.remove(own)
            if self._waiting:
                self._waiting[0].done.set()  # its outcome is still _LEAD: it takes over
            else:
                self._leading = False


def _unwrap(outcome: Any) -> Any:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
