"""Client loyalty by RFM (MISSION A7): recency, frequency and monetary value of the money
each client actually paid, scored 1–5 by quintiles, and named segments that never overlap.

Pure: the service feeds it one row per client (last payment day, number of payments, sum)
and stores what it returns."""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Paid:
    """What one client paid: the input of the scoring."""

    client_id: int
    last_paid_on: date
    payments: int
    amount: Decimal


@dataclass(frozen=True)
class Score:
    client_id: int
    recency_days: int
    payments: int
    amount: Decimal
    r: int
    f: int
    m: int
    segment: str


@dataclass(frozen=True)
class Rule:
    """A segment: scores inside these ranges (both ends included)."""

    code: str
    name: str
    r: tuple[int, int]
    f: tuple[int, int]
    m: tuple[int, int]
    meaning: str

    def fits(self, r: int, f: int, m: int) -> bool:
        return (self.r[0] <= r <= self.r[1] and self.f[0] <= f <= self.f[1]
                and self.m[0] <= m <= self.m[1])


# Checked top to bottom; the first rule that fits decides, and the last one takes every
# score left, so each client is in exactly one segment.  The administrator sees this
# table as it is (``rules_table``).
RULES: tuple[Rule, ...] = (
    Rule("champions", "чемпионы", (4, 5), (4, 5), (4, 5),
         "платят недавно, часто и много"),
    Rule("loyal", "лояльные", (3, 5), (3, 5), (1, 5),
         "платят регулярно и не пропадают"),
    Rule("promising", "перспективные", (4, 5), (1, 2), (1, 5),
         "заплатили недавно, но пока редко"),
    Rule("at_risk", "под угрозой", (1, 2), (3, 5), (1, 5),
         "платили часто, но давно не платят"),
    Rule("hibernating", "спящие", (2, 3), (1, 2), (1, 5),
         "платили редко и не в последнее время"),
    Rule("lost", "потерянные", (1, 5), (1, 5), (1, 5),
         "давно не платили и платили мало"),
)
SEGMENTS: dict[str, str] = {rule.code: rule.name for rule in RULES}


def segment(r: int, f: int, m: int) -> str:
    for rule in RULES:
        if rule.fits(r, f, m):
            return rule.code
    raise AssertionError("the last rule takes every score")  # pragma: no cover


def rules_table() -> list[dict[str, object]]:
    return [{"order": i, "code": rule.code, "name": rule.name, "r": list(rule.r),
             "f": list(rule.f), "m": list(rule.m), "meaning": rule.meaning}
            for i, rule in enumerate(RULES, start=1)]


def quintile_scorer(values: Iterable[Any]) -> Callable[[Any], int]:
    """A function value -> 1..5: the quintile of the value among ``values`` (higher value,
    higher score).  Equal values share a score (the rank of the first of them), so
    clients who paid the same are never split between two scores."""
    ordered = sorted(values)
    n = len(ordered)

    def score(value: Any) -> int:
        below = bisect_left(ordered, value)  # how many are strictly lower
        return 1 + (5 * below) // n

    return score


def score_all(rows: Sequence[Paid], today: date) -> list[Score]:
    """RFM scores of every client that paid: R from the days since the last payment
    (fewer days, higher score), F from the number of payments, M from the sum."""
    if not rows:
        return []
    recency = [(today - row.last_paid_on).days for row in rows]
    # a lower number of days is better: score the negated days
    r_score = quintile_scorer(-d for d in recency)
    f_score = quintile_scorer(row.payments for row in rows)
    m_score = quintile_scorer(row.amount for row in rows)
    out = []
    for row, days in zip(rows, recency, strict=True):
        r, f, m = r_score(-days), f_score(row.payments), m_score(row.amount)
        out.append(Score(row.client_id, max(days, 0), row.payments, row.amount, r, f, m,
                         segment(r, f, m)))
    return out


def changes(before: dict[int, str], after: Iterable[Score]) -> list[tuple[int, str | None, str]]:
    """(client, old segment or None, new segment) for every client whose segment moved:
    the history keeps only moves."""
    return [(s.client_id, before.get(s.client_id), s.segment) for s in after
            if before.get(s.client_id) != s.segment]


def next_night(now: datetime, tz: tzinfo, hour: int = 3) -> datetime:
    """When the nightly recomputation is due next: ``hour`` o'clock local time after now."""
    local = now.astimezone(tz)
    due = datetime.combine(local.date(), time(hour), tz)
    if due <= local:
        due = datetime.combine(local.date() + timedelta(days=1), time(hour), tz)
    return due


def segment_case(r: str = "r", f: str = "f", m: str = "m") -> str:
    """The rule table as one SQL ``CASE`` over score columns, so the database segments
    200,000 clients in one statement exactly as ``segment`` does (the same rules, in the
    same order; only integer literals and the given column names are written)."""
    arms = []
    for rule in RULES[:-1]:
        arms.append(f"WHEN {r} BETWEEN {rule.r[0]:d} AND {rule.r[1]:d} "
                    f"AND {f} BETWEEN {rule.f[0]:d} AND {rule.f[1]:d} "
                    f"AND {m} BETWEEN {rule.m[0]:d} AND {rule.m[1]:d} THEN '{rule.code}'")
    return f"CASE {' '.join(arms)} ELSE '{RULES[-1].code}' END"


class Change(NamedTuple):
    """One client's segment move in a recomputation (``segment`` None: it dropped out)."""

    client_id: int
    previous: str | None
    segment: str | None


# one event carries at most this many moves: a first run over 200,000 clients is 200
# messages a consumer applies in small transactions, not one huge one
CHANGES_PER_EVENT = 1000


def segment_events(moves: Sequence[Change], computed_at: datetime,
                   size: int = CHANGES_PER_EVENT) -> list[dict[str, Any]]:
    """The ``client_segments_changed`` payloads of a recomputation: its moves in order,
    ``size`` to a payload; none when nobody moved."""
    at = computed_at.isoformat()
    return [{"computed_at": at,
             "changes": [{"client_id": c.client_id, "segment": c.segment,
                          "previous": c.previous} for c in moves[i:i + size]]}
            for i in range(0, len(moves), size)]
