"""Every report page of the analytics section through the gateway, each beside its SQL
floor (goal from the issue: each report page p99 ≤ 300 ms).

Scale: ``BENCH_REPORT_CLIENTS`` clients (default 20,000), one deal each, generated straight
into the stack's analytics database as bench/loyalty.py does (a third won in the last 180
days with catalogue lines over eight product lines, a seventh lost, the rest open; 1–9
receipts per client), plus an open task on every other open deal and the estimator
recounted from the closed deals.  Pages, ``BENCH_REPEAT`` requests each (default 50):
- /analytics/bcg as a head: floor the BCG query (both periods) run directly;
- /analytics/forecast as a head: floor the statements the weighted pipeline runs, run
  directly (the estimator's counts, the typical cycles, the sums with the open deals'
  profiles as the service remembers them);
- /analytics/performance as a head: floor its one statement run directly;
- /admin/rfm as the administrator: floor the segment counts and the job row read directly.
Each is printed with ``bench/report.compare()``: median and p99 beside the floor's, goal
p99 ≤ 300 ms.  `python -m bench reports`."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.deals import web_session
from bench.loyalty import FILL, analytics_url
from bench.report import compare, show, timed
from gateway.rpc import RpcClient
from services.analytics import loyalty_store, performance_store, pipeline_store, winrate
from tests.support.stack import Stack

CLIENTS = int(os.environ.get("BENCH_REPORT_CLIENTS", 20_000))
REPEAT = int(os.environ.get("BENCH_REPEAT", 50))
PAGE_GOAL_MS = 300.0

MORE = [
    # a seventh of the deals that were not won are lost
    "UPDATE deals SET status = 'lost', closed_at = now() - (deal_id % 90) * interval '1 day'"
    " WHERE status <> 'won' AND deal_id % 7 = 0",
    "TRUNCATE tasks, win_outcomes, win_counts, deal_facts",
    """INSERT INTO tasks (reminder_id, deal_id, assignee_id, due_at)
       SELECT deal_id, deal_id, manager_id, now() + (deal_id % 20 - 10) * interval '1 day'
       FROM deals WHERE status = 'proposal' AND deal_id % 2 = 0""",
    "ANALYZE deals", "ANALYZE tasks",
]

FLOORS: dict[str, list[str]] = {
    "rfm": ["SELECT segment, count(*) FROM rfm_scores GROUP BY segment",
            "SELECT * FROM scheduled_jobs WHERE name = 'rfm'"],
}


def fill(url: str) -> float:
    started = time.monotonic()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in FILL + MORE:
                conn.execute(text(statement), {"clients": CLIENTS})
    finally:
        engine.dispose()
    return time.monotonic() - started


def floor_of(url: str, statements: list[str]) -> Callable[[], None]:
    engine = create_engine(url, pool_size=1)
    start = datetime.now(UTC) - timedelta(days=30)

    def run() -> None:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement), {"start": start,
                                               "day": start.date().isoformat()}).all()
    return run


KINDS = {"proposal": "open", "won": "won", "lost": "lost"}


def forecast_floor(url: str) -> Callable[[], None]:
    engine = create_engine(url, pool_size=1)
    now = datetime.now(UTC)
    open_, won = ["proposal"], ["won"]
    with Session(engine) as session:
        cycles = winrate.typical_cycles(session, won)
        profiles_sql, cells_sql, params, asked = pipeline_store.reads(
            open_, now, now.date(), 6, 200, cycles)
        profiles = session.execute(text(profiles_sql), params).tuples().all()
    asked.update(pipeline_store.profile_params(list(profiles), [50] * len(profiles)))

    def run() -> None:
        with Session(engine) as session:
            winrate.load_model(session)
            winrate.typical_cycles(session, won)
            session.execute(text(cells_sql), asked).all()
    return run


def performance_floor(url: str) -> Callable[[], None]:
    engine = create_engine(url, pool_size=1)
    end = datetime.now(UTC)
    sql, params = performance_store.statement(KINDS, end - timedelta(days=30), end, end, None)

    def run() -> None:
        with engine.connect() as conn:
            conn.execute(text(performance_store.NO_JIT))
            conn.execute(text(sql), params).all()
            conn.rollback()
    return run


def bcg_floor(url: str) -> Callable[[], None]:
    engine = create_engine(url, pool_size=1)
    end = datetime.now(UTC)
    start, before = end - timedelta(days=90), end - timedelta(days=180)

    def run() -> None:
        with engine.connect() as conn:
            conn.execute(text(loyalty_store.WON_SALES), {
                "start": start, "before": before, "end": end, "won": ["won"]}).all()
    return run


def run(stack: Stack) -> None:
    url = analytics_url(stack)
    print(f"generating {CLIENTS:,} clients' deals, receipts and tasks ...", flush=True)
    print(f"generated in {fill(url):.0f} s", flush=True)
    client = RpcClient(stack.env["AMQP_URI"], timeout=120, name="bench-reports")
    try:
        outcomes = client.call("analytics", "rebuild_probability")["outcomes"]
        scored = client.call("analytics", "recompute_rfm")["clients"]
    finally:
        client.close()
    print(f"estimator recounted from {outcomes:,} closed deals; {scored:,} clients scored",
          flush=True)
    head, admin = web_session(stack, "head"), web_session(stack, "admin")

    def page(session: Any, path: str) -> Callable[[], None]:
        def ask() -> None:
            answer = session.get(f"{stack.url}{path}", timeout=30)
            answer.raise_for_status()
        return ask

    print(f"scale: {CLIENTS:,} deals and clients; load average "
          f"{open('/proc/loadavg').read().split()[0]}", flush=True)  # noqa: SIM115
    for name, session, path, floor in (
            ("BCG page (head)", head, "/analytics/bcg", bcg_floor(url)),
            ("forecast page (head)", head, "/analytics/forecast", forecast_floor(url)),
            ("performance page (head)", head, "/analytics/performance",
             performance_floor(url)),
            ("RFM admin page", admin, "/admin/rfm", floor_of(url, FLOORS["rfm"]))):
        floor_samples = timed(floor, REPEAT)
        samples = timed(page(session, path), REPEAT)
        show(f"{name}: its SQL", floor_samples)
        show(name, samples)
        compare(name, samples, floor_samples, "its SQL", goal_p99=PAGE_GOAL_MS)
