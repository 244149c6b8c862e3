"""Win probability of an open deal (MISSION A5): a naive Bayes estimate from closed deals.
Pure: no nameko, no SQL, so every figure can be checked by hand.

Training, in the business's words (the way the strongest open implementation trains):
- a **won** deal counts as won at every open status of the funnel (it passed them all);
- a **lost** deal counts as lost at the open status it was lost at and at each one before
  it in the funnel's order (a deal created lost teaches nothing);
- so for every open status we know how many deals that stood there were won and lost, and
  how often each feature value (type, manager, client kind and group, age and amount
  bucket, source) came with either outcome.

Estimate at status ``s`` for a deal with values ``v``:
  log-odds = log((W + a) / (L + a)) + sum over features of log(P(v | won) / P(v | lost)),
  P(v | c) = (count(c, v) + a) / (N_c + a * K) (Laplace, K = values seen + 1 for the unseen),
a value seen fewer than ``MIN_VALUE_OBSERVATIONS`` times at that status says nothing (so
one lucky deal cannot dominate), nor does a feature with fewer than two such values, and
the result is clamped to 1–99 %.  A deal type with at least ``MIN_TYPE_DEALS`` closed
deals has its own model; other types use the pooled one (where the type is one more
feature).  Fewer than ``MIN_STATUS_EXAMPLES`` closed deals at
the status: "too little history", never a number.

Each factor is what its feature moves the estimate by: the estimate with every feature
minus the estimate without that one, in percentage points.
"""
from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any, NamedTuple

FEATURES = ("type", "manager", "client_kind", "client_group", "age", "amount", "source")
# the feature a per-type model leaves out: it is the same for every deal it learns from
TYPE_FEATURE = "type"
NONE = "none"
POOLED = 0  # model key of the pooled model (a type's model is keyed by its id)
ALPHA = 1.0
MIN_VALUE_OBSERVATIONS = 5
MIN_STATUS_EXAMPLES = 10
MIN_TYPE_DEALS = 30
CLAMP = (0.01, 0.99)
# bucket edges: a deal's age in days and its amount in roubles (upper bounds, inclusive)
AGE_EDGES = (7, 30, 90, 180)
AMOUNT_EDGES = (Decimal("10000"), Decimal("100000"), Decimal("1000000"))
SOURCES = ("manual", "form", "call", "email", "api", "questionnaire")
# the deals service's names for how a deal arrived, in the estimator's words (intake says
# "form" for what deals calls "web_form")
SOURCE_ALIASES = {"web_form": "form", "e-mail": "email", "phone": "call"}


def source_of(value: Any) -> str | None:
    """A told source in the estimator's words (None: not told)."""
    if value in (None, ""):
        return None
    text = str(value).strip().lower()[:20]
    return SOURCE_ALIASES.get(text, text)
# keys of the counts: (model, status, feature, value); the totals of a status are kept under
# feature "" and value "", and the number of closed deals a model learnt from under
# status "", feature "", value ""
TOTAL = ""


def bucket(value: int | Decimal, edges: Sequence[int | Decimal]) -> str:
    """The bucket of a whole ``value`` named by its bounds, edges being inclusive upper
    bounds: with edges (7, 30) the buckets are "0-7", "8-30" and "31+"."""
    return _labels(tuple(edges))[bisect_left(edges, value)]


@cache
def _labels(edges: tuple[int | Decimal, ...]) -> tuple[str, ...]:
    """Every bucket's name, in order (named once: a page estimates thousands of deals)."""
    lows = [0, *(edge + 1 for edge in edges)]
    return (*(f"{low}-{high}" for low, high in zip(lows, edges, strict=False)),
            f"{edges[-1] + 1}+")


DAY = timedelta(days=1)
WHOLE = Decimal("1")


def age_bucket(created_at: datetime, at: datetime) -> str:
    return bucket(max(0, (at - created_at) // DAY), AGE_EDGES)


def amount_bucket(amount: Decimal) -> str:
    return bucket(amount.quantize(WHOLE, ROUND_HALF_UP), AMOUNT_EDGES)


def features(*, type_id: int | None, manager_id: int | None, client_kind: str | None,
             client_group_id: int | None, created_at: datetime, at: datetime,
             amount: Decimal, source: str | None) -> dict[str, str]:
    """The feature values of a deal as it is at ``at`` (absent ones are "none")."""
    return {"type": str(type_id) if type_id is not None else NONE,
            "manager": str(manager_id) if manager_id is not None else NONE,
            "client_kind": client_kind or NONE,
            "client_group": str(client_group_id) if client_group_id is not None else NONE,
            "age": age_bucket(created_at, at), "amount": amount_bucket(amount),
            "source": source_value(source)}


def source_value(source: str | None) -> str:
    """How the deal arrived, as a feature value (not told: "manual", the deal's default)."""
    return source if source in SOURCES else ("manual" if not source else NONE)


@dataclass(frozen=True)
class Outcome:
    """A closed deal as the estimator learns from it."""

    deal_id: int
    type_id: int | None
    won: bool
    lost_at: str | None  # the open status it was lost at (None: won, or created lost)
    values: Mapping[str, str]
    closed_at: datetime


def passed(outcome: Outcome, open_order: Sequence[str]) -> list[str]:
    """The open statuses the deal counts at (see the module's rules)."""
    if outcome.won:
        return list(open_order)
    if outcome.lost_at not in open_order:
        return []
    return list(open_order[:open_order.index(outcome.lost_at) + 1])


Key = tuple[int, str, str, str]


def contributions(outcome: Outcome, open_order: Sequence[str]) -> dict[Key, tuple[int, int]]:
    """What one closed deal adds to the counts: key -> (won, lost), to its type's model and
    to the pooled one."""
    won, lost = (1, 0) if outcome.won else (0, 1)
    statuses = passed(outcome, open_order)
    models = [POOLED] if outcome.type_id is None else [POOLED, int(outcome.type_id)]
    rows: dict[Key, tuple[int, int]] = {}
    if not statuses:
        return rows
    for model in models:
        rows[(model, TOTAL, TOTAL, TOTAL)] = (won, lost)
        for status in statuses:
            rows[(model, status, TOTAL, TOTAL)] = (won, lost)
            for name in FEATURES:
                if model != POOLED and name == TYPE_FEATURE:
                    continue
                rows[(model, status, name, outcome.values.get(name, NONE))] = (won, lost)
    return rows


def count(outcomes: Iterable[Outcome], open_order: Sequence[str]) -> dict[Key, list[int]]:
    """The counts of many closed deals (the nightly rebuild, the back-test)."""
    counts: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    for outcome in outcomes:
        add(counts, contributions(outcome, open_order))
    return dict(counts)


def add(counts: dict[Key, list[int]], rows: Mapping[Key, tuple[int, int]], sign: int = 1
        ) -> None:
    for key, (won, lost) in rows.items():
        cell = counts.setdefault(key, [0, 0])
        cell[0] += sign * won
        cell[1] += sign * lost


class Factor(NamedTuple):
    feature: str
    value: str
    points: int  # percentage points the feature moves the estimate by


@dataclass(frozen=True)
class Estimate:
    percent: int | None  # None: too little history
    model: str  # "type" | "pooled" | "none"
    examples: int  # closed deals that stood at the status in the model used
    factors: tuple[Factor, ...] = ()

    @property
    def reason(self) -> str | None:
        return "too_little_history" if self.percent is None else None


@dataclass
class _StatusModel:
    prior: float  # log-odds of the status alone
    examples: int
    # feature -> value -> log(P(value | won) / P(value | lost)); absent: neutral
    ratios: dict[str, dict[str, float]] = field(default_factory=dict)


class Model:
    """The counts compiled into log-ratio tables, so an estimate is a few look-ups."""

    def __init__(self, counts: Mapping[Key, Sequence[int]]) -> None:
        self.deals: dict[int, int] = {}
        self.status: dict[tuple[int, str], _StatusModel] = {}
        per_feature: dict[tuple[int, str, str], dict[str, tuple[int, int]]] = defaultdict(dict)
        for (model, status, name, value), (won, lost) in counts.items():
            if status == TOTAL:
                self.deals[model] = won + lost
            elif name == TOTAL:
                self.status[(model, status)] = _StatusModel(
                    math.log((won + ALPHA) / (lost + ALPHA)), won + lost)
            else:
                per_feature[(model, status, name)][value] = (won, lost)
        for (model, status, name), values in per_feature.items():
            target = self.status.get((model, status))
            if target is None:
                continue
            total_won = sum(w for w, _ in values.values())
            total_lost = sum(lo for _, lo in values.values())
            k = len(values) + 1
            table: dict[str, float] = {}
            for value, (won, lost) in values.items():
                if won + lost < MIN_VALUE_OBSERVATIONS:
                    continue
                table[value] = math.log(((won + ALPHA) / (total_won + ALPHA * k))
                                        / ((lost + ALPHA) / (total_lost + ALPHA * k)))
            if len(table) >= 2:  # one value seen enough tells nothing apart
                target.ratios[name] = table

    def pick(self, status: str, type_id: int | None) -> tuple[str, _StatusModel | None]:
        """The type's own model when it has history enough, else the pooled one."""
        if type_id is not None and self.deals.get(int(type_id), 0) >= MIN_TYPE_DEALS:
            own = self.status.get((int(type_id), status))
            if own is not None and own.examples >= MIN_STATUS_EXAMPLES:
                return "type", own
        pooled = self.status.get((POOLED, status))
        if pooled is None or pooled.examples < MIN_STATUS_EXAMPLES:
            return "none", None
        return "pooled", pooled

    def log_odds(self, status: str, type_id: int | None, values: Mapping[str, str]
                 ) -> float | None:
        """The estimate's log-odds alone (the bench's hot path), None: too little history."""
        _, chosen = self.pick(status, type_id)
        if chosen is None:
            return None
        total = chosen.prior
        for name, table in chosen.ratios.items():
            total += table.get(values.get(name, NONE), 0.0)
        return total

    def estimate(self, status: str, type_id: int | None, values: Mapping[str, str],
                 top: int = 3) -> Estimate:
        kind, chosen = self.pick(status, type_id)
        if chosen is None:
            pooled = self.status.get((POOLED, status))
            return Estimate(None, kind, pooled.examples if pooled else 0)
        terms = {name: table[values.get(name, NONE)] for name, table in chosen.ratios.items()
                 if values.get(name, NONE) in table}
        full = chosen.prior + sum(terms.values())
        factors = [Factor(name, values.get(name, NONE),
                          _points(_sigmoid(full) - _sigmoid(full - term)))
                   for name, term in terms.items()]
        factors = sorted((f for f in factors if f.points), key=lambda f: (-abs(f.points),
                                                                           FEATURES.index(f.feature)))
        return Estimate(percent(full), kind, chosen.examples, tuple(factors[:top]))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _points(delta: float) -> int:
    return int(Decimal(delta * 100).quantize(Decimal("1"), ROUND_HALF_UP))


def clamp(probability: float) -> float:
    return min(CLAMP[1], max(CLAMP[0], probability))


def percent(log_odds: float) -> int:
    """Whole percent, clamped to 1–99."""
    return int(Decimal(clamp(_sigmoid(log_odds)) * 100).quantize(Decimal("1"), ROUND_HALF_UP))


# ---------------------------------------------------------------------------- back-test
@dataclass
class Calibration:
    low: int  # bin bounds, percent
    high: int
    count: int = 0
    predicted: float = 0.0  # mean predicted probability
    observed: float = 0.0  # share won


@dataclass
class BacktestResult:
    examples: int  # (deal, status) pairs scored by both
    skipped: int  # pairs with too little history before the deal closed
    brier: float
    baseline_brier: float
    calibration: list[Calibration]
    baseline_calibration: list[Calibration]


class Score(NamedTuple):
    deal_id: int
    status: str
    predicted: float
    baseline: float
    won: bool


def backtest_scores(outcomes: Sequence[Outcome], open_order: Sequence[str],
                    since: datetime) -> tuple[list[Score], int]:
    """Score the deals closed at or after ``since``, each at every status it counts at,
    with a model trained only on the deals closed before that deal's day began (so nothing
    that happened later, the deal's own outcome included, is known), beside the baseline of
    a fixed probability per status (the share won at that status in the same training).
    Also: how many (deal, status) pairs had too little history to be scored."""
    ordered = sorted(outcomes, key=lambda o: o.closed_at)
    pending = [o for o in ordered if o.closed_at >= since]
    counts: dict[Key, list[int]] = {}
    scores: list[Score] = []
    trained = skipped = index = 0
    while index < len(pending):
        day = _day(pending[index].closed_at)
        while trained < len(ordered) and ordered[trained].closed_at < day:
            add(counts, contributions(ordered[trained], open_order))
            trained += 1
        model = Model(counts)
        while index < len(pending) and _day(pending[index].closed_at) == day:
            deal = pending[index]
            for status in passed(deal, open_order):
                odds = model.log_odds(status, deal.type_id, deal.values)
                won, lost = counts.get((POOLED, status, TOTAL, TOTAL), (0, 0))
                if odds is None or won + lost == 0:
                    skipped += 1
                    continue
                scores.append(Score(deal.deal_id, status, clamp(_sigmoid(odds)),
                                    clamp(won / (won + lost)), deal.won))
            index += 1
    return scores, skipped


def backtest(outcomes: Sequence[Outcome], open_order: Sequence[str], since: datetime
             ) -> BacktestResult:
    """Brier scores and calibration of ``backtest_scores``: the estimate and the baseline."""
    scores, skipped = backtest_scores(outcomes, open_order, since)
    return BacktestResult(
        examples=len(scores), skipped=skipped,
        brier=brier([(s.predicted, s.won) for s in scores]),
        baseline_brier=brier([(s.baseline, s.won) for s in scores]),
        calibration=calibration([(s.predicted, s.won) for s in scores]),
        baseline_calibration=calibration([(s.baseline, s.won) for s in scores]))


def brier(pairs: Sequence[tuple[float, bool]]) -> float:
    """Mean squared distance of the predicted probability from the outcome (NaN: none)."""
    if not pairs:
        return math.nan
    return sum((p - (1.0 if won else 0.0)) ** 2 for p, won in pairs) / len(pairs)


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def calibration(pairs: Iterable[tuple[float, bool]], bins: int = 10) -> list[Calibration]:
    """Predicted against observed in ``bins`` equal bins of the predicted probability (a
    probability on a bin's upper edge belongs to that bin; 0 to the first)."""
    table = [Calibration(100 * i // bins, 100 * (i + 1) // bins) for i in range(bins)]
    sums: list[list[float]] = [[0.0, 0.0] for _ in range(bins)]
    for probability, won in pairs:
        i = min(bins - 1, max(0, math.ceil(probability * bins) - 1))
        table[i].count += 1
        sums[i][0] += probability
        sums[i][1] += 1.0 if won else 0.0
    for row, (p, w) in zip(table, sums, strict=True):
        if row.count:
            row.predicted, row.observed = p / row.count, w / row.count
    return table
