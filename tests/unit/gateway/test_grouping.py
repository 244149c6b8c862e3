"""The gateway's thread group: concurrent requests' calls go together, each request gets
its own answer or error, and nobody is left waiting."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from gateway.grouping import ThreadGroup


def test_concurrent_callers_share_calls_and_each_gets_its_own_answer() -> None:
    seen: list[list[int]] = []

    def run(items: list[int]) -> list[Any]:
        seen.append(list(items))
        time.sleep(0.02)  # a round trip to a service: the others queue up meanwhile
        return [ValueError(f"bad {i}") if i % 7 == 3 else i * 10 for i in items]

    group: ThreadGroup[int] = ThreadGroup(run)

    def call(i: int) -> Any:
        try:
            return group(i)
        except ValueError as exc:
            return str(exc)

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(call, range(200)))
    assert answers == [f"bad {i}" if i % 7 == 3 else i * 10 for i in range(200)]
    assert sorted(i for batch in seen for i in batch) == list(range(200))
    assert len(seen) < 50  # together, not one by one
    assert max(len(batch) for batch in seen) <= group.limit
    assert not group._leading and not group._waiting


def test_a_caller_alone_goes_at_once() -> None:
    group: ThreadGroup[str] = ThreadGroup(lambda items: [i.upper() for i in items])
    assert [group("a"), group("b")] == ["A", "B"]
    assert group.batches == 2


def test_a_failing_call_fails_only_its_items_and_the_next_call_goes() -> None:
    calls: list[list[int]] = []
    first_running = threading.Event()
    queued = threading.Event()

    def run(items: list[int]) -> list[Any]:
        calls.append(list(items))
        if len(calls) == 1:
            first_running.set()
            queued.wait(5)
            raise ConnectionError("broker gone")
        return items

    group: ThreadGroup[int] = ThreadGroup(run)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(group, 0)
        first_running.wait(5)
        rest = [pool.submit(group, i) for i in range(1, 6)]
        while len(group._waiting) < 5:  # all five wait for the next call
            time.sleep(0.001)
        queued.set()
        with pytest.raises(ConnectionError, match="broker gone"):
            first.result(5)
        assert [f.result(5) for f in rest] == [1, 2, 3, 4, 5]
    assert calls == [[0], [1, 2, 3, 4, 5]]


def test_a_wrong_number_of_answers_is_every_items_error() -> None:
    group: ThreadGroup[int] = ThreadGroup(lambda items: [])
    with pytest.raises(RuntimeError, match="gave 0 outcomes"):
        group(1)
    assert not group._leading
