"""The funnel from grouped summaries (what the service computes in SQL) equals the funnel
walked move by move (``domain.funnel``, the reference), on random hand-made histories."""
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from statistics import median

import pytest

from services.analytics import domain
from tests.unit.analytics.test_funnel_maths import KINDS, LAYERS, STATUSES

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=400)
CODES = [s["code"] for s in STATUSES]


def random_paths(seed: int, deals: int) -> list[domain.Path]:
    rng = random.Random(seed)
    paths = []
    for deal_id in range(1, deals + 1):
        at, moves = T0 + timedelta(hours=rng.randrange(2000)), []
        for seq in range(1, rng.randrange(1, 7) + 1):
            code = rng.choice(CODES)
            reason = rng.choice([None, "Цена", "Нет бюджета"]) if code == "lost" else None
            moves.append(domain.Move(seq, code, at, reason))
            at += timedelta(hours=rng.randrange(0, 300))
        paths.append(domain.Path(deal_id, tuple(moves), Decimal(rng.randrange(100, 9999))))
    return paths


def summarised(paths: list[domain.Path]) -> tuple[list[domain.Group], dict[str, float]]:
    """What the summary rows and the two aggregate queries give for ``paths``."""
    grouped: dict[tuple[tuple[str, ...], str | None], list[Decimal]] = defaultdict(list)
    spent: dict[str, list[float]] = defaultdict(list)
    for p in paths:
        grouped[(tuple(m.to for m in p.moves), p.moves[-1].loss_reason)].append(p.amount)
        finished: dict[str, float] = {}
        for move, after in zip(p.moves, p.moves[1:], strict=False):
            finished[move.to] = finished.get(move.to, 0.0) + max(
                0.0, (after.at - move.at).total_seconds())
        finished.setdefault(p.moves[-1].to, 0.0)
        for code, secs in domain.seconds_in(list(finished), list(finished.values()),
                                            p.moves[-1].to, p.moves[-1].at, KINDS,
                                            NOW).items():
            spent[code].append(secs)
    groups = [domain.Group(path, reason, len(amounts), sum(amounts, Decimal(0)))
              for (path, reason), amounts in grouped.items()]
    codes = domain.open_layer_codes(LAYERS, KINDS)
    return groups, {code: median(v) for code, v in spent.items() if code in codes}


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_funnel_of_groups_equals_the_funnel_walked_move_by_move(seed):
    paths = random_paths(seed, 300)
    groups, medians = summarised(paths)
    assert domain.funnel_of_groups(groups, medians, LAYERS, KINDS) == domain.funnel(
        paths, LAYERS, KINDS, NOW)


@pytest.mark.parametrize("seed", [5, 6])
def test_lost_of_groups_equals_the_lost_breakdown(seed):
    paths = random_paths(seed, 300)
    groups, _ = summarised(paths)
    assert domain.lost_of_groups(groups, LAYERS, KINDS) == domain.lost_breakdown(
        paths, LAYERS, KINDS, NOW)


def test_seconds_in_adds_the_current_visit_to_an_open_status_only():
    spent = domain.seconds_in(["new", "talks", "won"], [3600.0, 0.0, 0.0], "talks",
                              NOW - timedelta(hours=2), KINDS, NOW)
    assert spent == {"new": 3600.0, "talks": 7200.0}


def test_lost_paths_pick_the_paths_lost_at_a_layer_for_one_reason():
    groups = [domain.Group(("new", "talks", "lost"), "Цена", 2, Decimal(10)),
              domain.Group(("new", "talks", "new", "lost"), "Цена", 1, Decimal(10)),
              domain.Group(("new", "talks", "lost"), None, 1, Decimal(10)),
              domain.Group(("new", "talks"), None, 5, Decimal(10))]
    assert domain.lost_paths(groups, LAYERS, KINDS, "talks", "Цена") == [
        ("new", "talks", "lost")]
    assert domain.lost_paths(groups, LAYERS, KINDS, "talks") == [("new", "talks", "lost")]
    assert domain.lost_paths(groups, LAYERS, KINDS, "new") == [("new", "talks", "new", "lost")]
    assert domain.reaching(LAYERS, 2) == ["offer", "won"]
