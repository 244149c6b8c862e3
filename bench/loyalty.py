"""Client loyalty (RFM) and the BCG matrix at scale (goals from the issue: RFM for 200,000
clients in ≤ 30 s; each report page p99 ≤ 300 ms).

Receipts for ``BENCH_RFM_CLIENTS`` clients (default 20,000; 200,000 for the goal's run)
are generated straight into the stack's analytics database (INSERT ... SELECT
generate_series: one deal per client, 1–9 receipts each, some deals won with catalogue
lines over eight product lines), then:
- the RFM recomputation is timed twice in-process on that database (the first run moves
  every client into a segment, the second finds few moves), beside its floor: the one
  aggregate query that reads what each client paid;
- the report pages are timed through the gateway (BCG as a head, the client list filtered
  by an RFM segment, the RFM rules page as the administrator) beside the floor of a page
  that asks no service (``/profile``).
``BENCH_REPEAT`` requests per page (default 50).  `python -m bench loyalty`."""
from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.deals import web_session
from bench.report import percentile, show, spread, timed, verdict
from services.analytics import loyalty_store
from tests.support.stack import Stack

CLIENTS = int(os.environ.get("BENCH_RFM_CLIENTS", 20_000))
REPEAT = int(os.environ.get("BENCH_REPEAT", 50))
RFM_GOAL_S = 30.0 * CLIENTS / 200_000  # the goal scaled to the size run
PAGE_GOAL_MS = 300.0

FILL = [
    "TRUNCATE receipts, deals, rfm_scores, rfm_history, deal_lines",
    # one deal per client; a third of them won in the last 180 days
    """INSERT INTO deals (deal_id, version, rebuilt_version, name, client_id, client_name,
                          manager_id, type_id, status, amount, currency, created_at,
                          closed_at)
       SELECT g, 2, 0, 'Сделка ' || g, g, 'Клиент ' || g, g % 50 + 1, NULL,
              CASE WHEN g % 3 = 0 THEN 'won' ELSE 'proposal' END,
              ((g * 7919) % 1000000)::numeric / 10 + 1000, 'RUB', now() - interval '400 days',
              CASE WHEN g % 3 = 0 THEN now() - ((g * 13) % 180) * interval '1 day' END
       FROM generate_series(1::bigint, :clients) AS g""",
    # 1-9 receipts per client, the last one 0-729 days ago
    """INSERT INTO receipts (receipt_id, deal_id, amount, currency, received_on)
       SELECT g * 10 + k, g, ((g * 104729 + k * 31) % 500000)::numeric / 10 + 100, 'RUB',
              to_char(current_date - ((g * 37) % 730 + k * 11)::int, 'YYYY-MM-DD')
       FROM generate_series(1::bigint, :clients) AS g
       CROSS JOIN LATERAL generate_series(1, (g % 9 + 1)::int) AS k""",
    """INSERT INTO deal_lines (deal_id, position, version, product_line, amount)
       SELECT d.deal_id, k, 1, 'Линия ' || ((d.deal_id + k) % 8 + 1), d.amount / 2
       FROM deals d CROSS JOIN generate_series(0, 1) AS k WHERE d.status = 'won'""",
    "ANALYZE receipts", "ANALYZE deals", "ANALYZE deal_lines",
]


def analytics_url(stack: Stack) -> str:
    base = stack.env.get("DB_BASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")
    return f"{base}/{stack.prefix}_analytics"


def fill(url: str) -> float:
    started = time.monotonic()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in FILL:
                conn.execute(text(statement), {"clients": CLIENTS})
    finally:
        engine.dispose()
    return time.monotonic() - started


def rfm_runs(url: str) -> tuple[list[float], list[float], list[int]]:
    """Seconds of two full recomputations and of the floor query; moves of each run."""
    engine = create_engine(url)
    runs, floors, moves = [], [], []
    try:
        for _ in range(2):
            with Session(engine) as session:
                started = time.perf_counter()
                loyalty_store.paid(session)
                floors.append(time.perf_counter() - started)
            with Session(engine) as session:
                now = datetime.now(UTC)
                started = time.perf_counter()
                result = loyalty_store.recompute(session, now.date(), now)
                session.commit()
                runs.append(time.perf_counter() - started)
                moves.append(int(result["moved"]))
    finally:
        engine.dispose()
    return runs, floors, moves


def run(stack: Stack) -> None:
    url = analytics_url(stack)
    print(f"generating receipts of {CLIENTS:,} clients ...", flush=True)
    print(f"generated in {fill(url):.0f} s", flush=True)
    runs, floors, moves = rfm_runs(url)
    print(f"RFM recomputation runs: {spread(runs)} s; clients moved per run: {moves}; "
          f"the aggregate read alone: {spread(floors)} s", flush=True)
    verdict(f"RFM for {CLIENTS:,} clients (best of 2)", min(runs), "s",
            floor=min(floors), floor_name="aggregate query", goal=RFM_GOAL_S,
            higher_is_better=False, goal_text=f"<= {RFM_GOAL_S:.1f}")

    head, admin, anna = (web_session(stack, name) for name in ("head", "admin", "anna"))

    def page(session, path):  # type: ignore[no-untyped-def]
        def ask() -> None:
            answer = session.get(f"{stack.url}{path}", timeout=30)
            answer.raise_for_status()
        return ask

    floor = timed(page(anna, "/profile"), REPEAT)
    show("floor: /profile (no service asked)", floor)
    for name, session, path in (
            ("BCG page (head)", head, "/analytics/bcg?start=2026-06-01"),
            ("client list, RFM segment filter", anna, "/clients?rfm=at_risk"),
            ("client list with the RFM column", anna, "/clients"),
            ("RFM rules page (admin)", admin, "/admin/rfm")):
        samples = timed(page(session, path), REPEAT)
        show(name, samples)
        verdict(f"{name} p99", percentile(samples, 99), "ms",
                floor=percentile(floor, 99), floor_name="/profile p99", goal=PAGE_GOAL_MS,
                higher_is_better=False)
