"""Group commit: concurrent callers are served in batches, each with its own answer."""
from __future__ import annotations

from typing import Any

import eventlet
import pytest

from services.kit.group import Group, Interrupted


def test_concurrent_callers_share_batches_and_each_gets_its_own_answer() -> None:
    seen: list[list[int]] = []

    def run(items: list[int], context: Any) -> list[Any]:
        seen.append(list(items))
        eventlet.sleep(0.01)  # a round trip: the others queue up meanwhile
        return [ValueError(f"bad {i}") if i % 7 == 3 else i * 10 for i in items]

    group: Group[int] = Group(run)

    def call(i: int) -> Any:
        try:
            return group(i)
        except ValueError as exc:
            return str(exc)

    pool = eventlet.GreenPool(50)
    answers = list(pool.imap(call, range(50)))
    assert answers == [f"bad {i}" if i % 7 == 3 else i * 10 for i in range(50)]
    assert sorted(i for batch in seen for i in batch) == list(range(50))
    assert len(seen) < 10  # batched, not one by one
    assert not group.leading and not group.waiting


def test_a_failing_batch_fails_only_its_items_and_the_next_batch_runs() -> None:
    calls = []

    def run(items: list[int], context: Any) -> list[Any]:
        calls.append(list(items))
        eventlet.sleep(0.01)
        if len(calls) == 1:
            raise RuntimeError("database gone")
        return items

    group: Group[int] = Group(run)
    pool = eventlet.GreenPool(10)

    def call(i: int) -> Any:
        try:
            return group(i)
        except RuntimeError as exc:
            return str(exc)

    answers = list(pool.imap(call, range(10)))
    failed = set(calls[0])
    assert answers == ["database gone" if i in failed else i for i in range(10)]
    assert len(calls) >= 2


def test_the_batch_runs_with_the_leaders_context_and_a_leader_does_not_wait_for_others(
) -> None:
    contexts = []

    def run(items: list[str], context: Any) -> list[Any]:
        contexts.append(context)
        eventlet.sleep(0.01)
        return items

    group: Group[str] = Group(run, limit=2)
    pool = eventlet.GreenPool(10)
    assert list(pool.imap(lambda i: group(f"x{i}", context=i), range(6))) == \
        [f"x{i}" for i in range(6)]
    # the first caller leads at once, alone; then each batch is led by its first caller
    assert contexts == [0, 1, 3, 5]


def stalling_on_zero() -> tuple[Group[int], Any]:
    """A group whose batch with item 0 in it never ends by itself; and the event set
    when that batch has started."""
    started = eventlet.event.Event()

    def run(items: list[int], context: Any) -> list[Any]:
        if 0 in items:
            started.send(True)
            eventlet.sleep(10)
        eventlet.sleep(0.01)
        return items

    return Group(run), started


def test_a_leader_killed_mid_batch_answers_the_others_and_hands_on_the_lead() -> None:
    group, started = stalling_on_zero()
    leader = eventlet.spawn(group, 0)
    started.wait()
    others = [eventlet.spawn(group, i) for i in (1, 2)]
    eventlet.sleep(0)
    leader.kill()
    assert [g.wait() for g in others] == [1, 2]  # the next batch ran without the leader
    assert not group.leading


def test_an_item_in_the_killed_leaders_batch_is_told_so() -> None:
    group, started = stalling_on_zero()
    first = eventlet.spawn(group, 9)  # leads a batch of its own; 0 and 1 queue meanwhile
    eventlet.sleep(0)
    leader, other = eventlet.spawn(group, 0), eventlet.spawn(group, 1)
    assert first.wait() == 9
    started.wait()  # 0 now leads the batch [0, 1]
    leader.kill()
    with pytest.raises(Interrupted):
        other.wait()
    assert not group.leading and not group.waiting
