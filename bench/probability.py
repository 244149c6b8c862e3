"""Win probability (MISSION A5), measured rather than claimed, on a generated history where
the deal type and the manager really matter:

- back-test: the Brier score and a 10-bin calibration table of the estimate on the deals
  closed in the last ``BENCH_PROBABILITY_TEST_DAYS`` days, each scored with a model trained
  only on the deals closed before its day, beside the baseline of a fixed probability per
  status (the share won at that status in the same training);
- the estimate of N open deals recomputed (``BENCH_PROBABILITY_DEALS``, default 200,000;
  the goal is 1,000,000 in 60 s), beside the floor of one pass that only reads each deal's
  values, and the nightly recount of the closed deals' counts.

Pure (probability.py): no stack needed, ``python -m bench probability`` runs alone.
"""
from __future__ import annotations

import math
import os
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.report import verdict
from services.analytics import probability as p

NEEDS_STACK = False
ORDER = ["new", "qualification", "proposal", "negotiation", "contract"]
TYPES = {1: 0.9, 2: -0.2, 3: -1.3, 4: 0.3}  # log-odds each type adds
SOURCES = {"manual": 0.0, "form": -0.4, "call": 0.4, "email": -0.1}


def history(closed: int, seed: int = 7) -> list[p.Outcome]:
    """Closed deals over a year: won with a probability set by type, manager, source and
    amount (age does not matter); a lost deal is lost at a random open status."""
    rng = random.Random(seed)
    managers = {m: rng.gauss(0, 0.8) for m in range(1, 21)}
    end = datetime(2026, 12, 1, tzinfo=UTC)
    rows = []
    for i in range(closed):
        type_id = rng.choice(list(TYPES))
        manager = rng.choice(list(managers))
        source = rng.choice(list(SOURCES))
        amount = Decimal(rng.choice((5_000, 50_000, 500_000, 5_000_000)))
        logit = (-0.3 + TYPES[type_id] + managers[manager] + SOURCES[source]
                 - 0.25 * math.log10(float(amount) / 5_000))
        won = rng.random() < 1 / (1 + math.exp(-logit))
        closed_at = end - timedelta(days=rng.uniform(0, 365))
        created_at = closed_at - timedelta(days=rng.uniform(1, 120))
        values = p.features(type_id=type_id, manager_id=manager, client_kind="company",
                            client_group_id=None, created_at=created_at, at=closed_at,
                            amount=amount, source=source)
        rows.append(p.Outcome(i, type_id, won, None if won else rng.choice(ORDER), values,
                              closed_at))
    return rows


def run(stack: object = None) -> None:
    closed = int(os.environ.get("BENCH_PROBABILITY_CLOSED", 20_000))
    test_days = int(os.environ.get("BENCH_PROBABILITY_TEST_DAYS", 60))
    deals = int(os.environ.get("BENCH_PROBABILITY_DEALS", 200_000))
    rows = history(closed)
    since = max(o.closed_at for o in rows) - timedelta(days=test_days)
    started = time.perf_counter()
    result = p.backtest(rows, ORDER, since)
    print(f"back-test: {closed:,} closed deals, the last {test_days} days scored"
          f" ({result.examples:,} deal×status pairs, {result.skipped:,} skipped for too"
          f" little history) in {time.perf_counter() - started:.1f} s", flush=True)
    print(f"  Brier: estimate {result.brier:.4f}, fixed per status {result.baseline_brier:.4f}"
          f" (lower is better)", flush=True)
    # in thousandths, so the report's one decimal shows the difference
    verdict("Brier score ×1000, estimate", 1000 * result.brier, "",
            floor=1000 * result.baseline_brier, floor_name="per-status baseline",
            goal=1000 * result.baseline_brier, higher_is_better=False,
            goal_text="< baseline")
    print("  calibration (bin %: pairs, predicted → observed; baseline the same)", flush=True)
    for est, base in zip(result.calibration, result.baseline_calibration, strict=True):
        print(f"  {est.low:>3}–{est.high:<3}  {est.count:>7,}  {100 * est.predicted:5.1f} →"
              f" {100 * est.observed:5.1f}    | {base.count:>7,}  {100 * base.predicted:5.1f} →"
              f" {100 * base.observed:5.1f}", flush=True)

    started = time.perf_counter()
    counts = p.count(rows, ORDER)
    model = p.Model(counts)
    recount = time.perf_counter() - started
    print(f"recount of {closed:,} closed deals ({len(counts):,} counts) and compile:"
          f" {recount:.2f} s", flush=True)

    rng = random.Random(11)
    open_deals = [(rng.choice(ORDER), t, o.values) for o in rng.choices(rows, k=deals)
                  for t in (o.type_id,)]
    started = time.perf_counter()
    touched = 0
    for status, _type_id, values in open_deals:
        touched += len(values.get("manager", "")) + len(status)
    floor = time.perf_counter() - started
    started = time.perf_counter()
    shown = 0
    for status, type_id, values in open_deals:
        odds = model.log_odds(status, type_id, values)
        if odds is not None:
            shown += p.percent(odds)
    took = time.perf_counter() - started
    assert touched and shown  # the loops' results are used, so neither is skipped
    verdict(f"estimates of {deals:,} open deals", deals / took, "deals/s",
            floor=deals / floor if floor else None, floor_name="read values only",
            goal=1_000_000 / 60, goal_text=">= 16,667 (1,000,000 in 60 s)")
    print(f"  {took:.2f} s for {deals:,}: 1,000,000 would take {took * 1_000_000 / deals:.1f} s",
          flush=True)
