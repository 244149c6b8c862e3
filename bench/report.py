"""Timing helpers shared by the benchmark modules."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def timed(fn: Callable[[], Any], repeat: int, warmup: int = 5) -> list[float]:
    """Milliseconds of ``repeat`` runs of ``fn`` after ``warmup`` unmeasured ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def line(name: str, samples: list[float], unit: str = "ms") -> str:
    return (f"{name:<48} median {statistics.median(samples):8.2f} {unit}   "
            f"p99 {percentile(samples, 99):8.2f} {unit}   n={len(samples)}")


def show(name: str, samples: list[float], unit: str = "ms") -> None:
    print(line(name, samples, unit), flush=True)
