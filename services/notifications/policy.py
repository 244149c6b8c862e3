"""When to try a failed notification again: exponential back-off with jitter.

Pure: the clock and the random source come in as arguments, so tests are exact.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6        # including the first; after that the notification fails
    base_delay: float = 30.0     # seconds before the second attempt (before jitter)
    multiplier: float = 2.0
    max_delay: float = 3600.0    # back-off ceiling (before jitter)
    jitter: float = 0.25         # share of a delay that is randomised
    # A provider asking for a longer pause than this means the message would be stale.
    max_retry_after: float = 6 * 3600.0
    # Returns floats in [0, 1); pass random.Random(seed).random for reproducible runs.
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay <= 0 or self.multiplier < 1:
            raise ValueError("need max_attempts >= 1, base_delay > 0, multiplier >= 1")
        if not 0 <= self.jitter < 1 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= jitter < 1 and max_delay >= base_delay")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        Jitter only shortens the delay, so the ceiling holds and messages that failed
        together (a provider outage) do not all come back in the same second.
        """
        return self._raw_delay(attempt) * (1 - self.jitter * self.rng())

    def next_attempt_at(self, attempt: int, now: datetime,
                        retry_after: float | None = None) -> datetime | None:
        """When to make attempt ``attempt + 1``; None means give up (mark failed).

        A provider's ``retry_after`` is a floor: it is honoured even above
        ``max_delay``, spread upwards by the jitter because a rate limit usually covers
        the whole account and every waiting message heard the same number.
        """
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        if attempt >= self.max_attempts:
            return None
        delay = self.backoff(attempt)
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            delay = max(delay, retry_after * (1 + self.jitter * self.rng()))
        return now + timedelta(seconds=delay)

    def _raw_delay(self, attempt: int) -> float:
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        steps = attempt - 1
        # Compare in logs: multiplier ** steps overflows a float for large attempts.
        if self.multiplier > 1 and steps * math.log(self.multiplier) >= math.log(
                self.max_delay / self.base_delay):
            return self.max_delay
        return min(self.max_delay, self.base_delay * self.multiplier ** steps)
