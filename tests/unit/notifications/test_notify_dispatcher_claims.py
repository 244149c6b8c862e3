"""The dispatcher claims for several free senders at once when a finished send woke it,
and for whatever is free otherwise (no database: the claim and the pool are stand-ins)."""
from __future__ import annotations

from typing import Any

from services.notifications.extensions import Dispatcher


class Pool:
    def __init__(self, size: int, busy: int) -> None:
        self.size, self.busy, self.spawned = size, busy, 0

    def free(self) -> int:
        return self.size - self.busy - self.spawned

    def running(self) -> int:
        return self.busy + self.spawned

    def spawn_n(self, fn: Any, *args: Any) -> None:
        self.spawned += 1


def dispatcher(busy: int, due: int = 100) -> tuple[Dispatcher, list[int]]:
    claims: list[int] = []
    d = Dispatcher.__new__(Dispatcher)
    d.concurrency, d.claim_at_least, d._running = 20, 5, True
    d.pool = Pool(20, busy)  # type: ignore[assignment]

    def claim(limit: int) -> list[int]:
        claims.append(limit)
        return list(range(min(limit, due)))

    d._claim = claim  # type: ignore[method-assign]
    return d, claims


def test_a_send_that_frees_one_of_many_busy_senders_claims_nothing_yet() -> None:
    d, claims = dispatcher(busy=19)
    assert d.fill(coalesce=True) == 0
    assert claims == []


def test_once_a_quarter_of_the_senders_are_free_they_are_claimed_for_together() -> None:
    d, claims = dispatcher(busy=15)
    assert d.fill(coalesce=True) == 5
    assert claims == [5]


def test_the_last_send_ending_or_a_timer_pass_claims_whatever_is_free() -> None:
    d, claims = dispatcher(busy=19)
    assert d.fill() == 1 and claims == [1]
    d, claims = dispatcher(busy=0, due=3)
    assert d.fill(coalesce=True) == 3 and claims == [20]
