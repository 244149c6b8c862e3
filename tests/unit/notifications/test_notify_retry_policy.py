"""The retry policy's arithmetic."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifications.policy import RetryPolicy

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def no_jitter_draw() -> float:
    return 0.0


def delay(policy: RetryPolicy, attempt: int, retry_after: float | None = None) -> float:
    moment = policy.next_attempt_at(attempt, NOW, retry_after)
    assert moment is not None
    return (moment - NOW).total_seconds()


def test_delays_double_up_to_the_ceiling() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=30, max_delay=600, rng=no_jitter_draw)
    assert [delay(policy, n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 600, 600]


def test_jitter_only_shortens_within_its_share() -> None:
    policy = RetryPolicy(base_delay=100, jitter=0.25, rng=lambda: 0.999999)
    assert 75 <= delay(policy, 1) < 75.01


def test_same_seed_gives_the_same_schedule() -> None:
    def schedule(seed: int) -> list[datetime | None]:
        policy = RetryPolicy(max_attempts=8, rng=random.Random(seed).random)
        return [policy.next_attempt_at(n, NOW) for n in range(1, 8)]

    assert schedule(7) == schedule(7)
    assert schedule(7) != schedule(8)


def test_gives_up_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, rng=no_jitter_draw)
    assert policy.next_attempt_at(2, NOW) == NOW + timedelta(seconds=60)
    assert policy.next_attempt_at(3, NOW) is None
    assert RetryPolicy(max_attempts=1).next_attempt_at(1, NOW) is None


def test_provider_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(base_delay=30, max_delay=600, jitter=0.2, rng=no_jitter_draw)
    assert delay(policy, 1, retry_after=5) == 30        # back-off already longer
    assert delay(policy, 1, retry_after=120) == 120
    assert delay(policy, 1, retry_after=5000) == 5000   # above max_delay, still honoured


def test_retry_after_is_spread_upwards() -> None:
    policy = RetryPolicy(base_delay=1, jitter=0.2, rng=lambda: 0.5)
    assert delay(policy, 1, retry_after=100) == pytest.approx(110)


def test_retry_after_beyond_staleness_gives_up() -> None:
    policy = RetryPolicy(max_retry_after=3600)
    assert policy.next_attempt_at(1, NOW, retry_after=3601) is None


def test_huge_attempt_numbers_do_not_overflow() -> None:
    policy = RetryPolicy(max_attempts=100_000, max_delay=900, rng=no_jitter_draw)
    assert delay(policy, 50_000) == 900


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_are_one_based(attempt: int) -> None:
    with pytest.raises(ValueError):
        RetryPolicy().next_attempt_at(attempt, NOW)


@pytest.mark.parametrize("kwargs", [
    {"max_attempts": 0}, {"base_delay": 0}, {"multiplier": 0.5}, {"jitter": 1.0},
    {"base_delay": 100, "max_delay": 10},
])
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(attempt=st.integers(1, 200), draw=st.floats(0, 1, exclude_max=True),
       jitter=st.floats(0, 0.9))
def test_backoff_stays_within_bounds(attempt: int, draw: float, jitter: float) -> None:
    policy = RetryPolicy(base_delay=10, max_delay=1000, jitter=jitter, rng=lambda: draw)
    assert 10 * (1 - jitter) - 1e-9 <= policy.backoff(attempt) <= 1000
