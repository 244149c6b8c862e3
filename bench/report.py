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


def spread(values: list[float]) -> str:
    """Median with the range of repeated runs: the noise of a shared machine, shown."""
    if len(values) == 1:
        return f"{values[0]:,.0f}"
    return f"{statistics.median(values):,.0f} (min {min(values):,.0f}, max {max(values):,.0f})"


def number(value: float) -> str:
    """Two decimals where they matter (milliseconds of a round trip), none for rates."""
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def verdict(name: str, value: float, unit: str, *, floor: float | None = None,
            floor_name: str = "", goal: float, higher_is_better: bool = True,
            goal_text: str = "") -> bool:
    """One figure beside its floor measured in the same run (as a ratio) and its goal,
    with "ok" or "short"."""
    ok = value >= goal if higher_is_better else value <= goal
    parts = [f"{name:<44} {number(value):>12} {unit}"]
    if floor is not None and floor > 0:
        ratio = value / floor
        parts.append(f"floor {floor_name} {number(floor)} {unit} (x{ratio:.2f})")
    parts.append(f"goal {goal_text or ('>= ' if higher_is_better else '<= ') + number(goal)}"
                 f" {unit}")
    parts.append("ok" if ok else "short")
    print("   ".join(parts), flush=True)
    return ok



def compare(name: str, samples: list[float], floor: list[float], floor_name: str, *,
            goal_p50: float | None = None, goal_p99: float | None = None,
            ratio: float | None = None, plus: float = 0.0, plus_name: str = "",
            unit: str = "ms") -> bool:
    """Median and p99 of ``samples``, each beside the same statistic of ``floor`` (measured
    in the same run) with its goal: absolute (``goal_p50``/``goal_p99``), or ``ratio`` times
    the floor's statistic plus ``plus`` (e.g. "3x SQL + one RPC").  True if all hold."""
    ok = True
    for stat, absolute in (("median", goal_p50), ("p99", goal_p99)):
        value = statistics.median(samples) if stat == "median" else percentile(samples, 99)
        base = statistics.median(floor) if stat == "median" else percentile(floor, 99)
        if ratio is not None:
            goal = ratio * base + plus
            text = f"<= {ratio:g}x floor" + (f" + {plus_name}" if plus_name else "")
            ok &= verdict(f"{name} {stat}", value, unit, floor=base, floor_name=floor_name,
                          goal=goal, higher_is_better=False, goal_text=f"{text} = {goal:,.1f}")
        elif absolute is not None:
            ok &= verdict(f"{name} {stat}", value, unit, floor=base, floor_name=floor_name,
                          goal=absolute, higher_is_better=False)
    return ok
