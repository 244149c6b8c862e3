"""``Server-Timing`` on the pages whose time matters (the deal page): where a request spent
it — waiting for services, rendering, building JSON — readable in the browser's tools and
by the benchmark, without a profiler."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Response, g


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time a phase of this request (milliseconds, added up if it runs twice)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        spent: dict[str, float] = g.setdefault("timing", {})
        spent[name] = spent.get(name, 0.0) + (time.perf_counter() - started) * 1000


def header(spent: dict[str, float]) -> str:
    return ", ".join(f"{name};dur={ms:.2f}" for name, ms in spent.items())


def with_timing(response: Response) -> Response:
    spent = g.get("timing")
    if spent:
        response.headers["Server-Timing"] = header(spent)
    return response
