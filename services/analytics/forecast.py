"""Weighted pipeline (MISSION A5): Σ amount × probability of the open deals by the month
they are expected to close, overall, per manager and per department.  Pure.

Rules:
- an open deal is expected to close on its planned close date when it has one (basis
  ``planned``), else (basis ``cycle``) its
  creation plus the typical cycle of its type (the median days from creation to won of
  that type's won deals, when at least ``MIN_CYCLE_DEALS`` of them; else of every won
  deal; else ``DEFAULT_CYCLE_DAYS``); an expected date already past is this month (the
  deal is late, not gone);
- the probability is the manager's own figure when set by hand, else the estimate; a deal
  with neither (too little history) is left out of the weighted sums and counted apart;
- lost and won deals are not in the pipeline (the caller passes open deals only);
- months from the current one for ``months`` months; later ones are summed as "later".
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import median
from typing import Any

MIN_CYCLE_DEALS = 5
DEFAULT_CYCLE_DAYS = 30
LATER = "later"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class OpenDeal:
    deal_id: int
    manager_id: int | None
    type_id: int | None
    amount: Decimal
    created_at: datetime
    percent: int | None  # the estimate (None: too little history)
    manual_percent: int | None = None  # set by hand: wins over the estimate
    planned_close: date | None = None


def typical_cycles(won: Iterable[tuple[int | None, float]]) -> dict[int | None, float]:
    """Median days from creation to won per type (key None: every won deal, the fallback
    of a type with too few), from (type_id, days) of won deals."""
    per_type: dict[int | None, list[float]] = {}
    everyone: list[float] = []
    for type_id, days in won:
        everyone.append(days)
        if type_id is not None:
            per_type.setdefault(type_id, []).append(days)
    cycles: dict[int | None, float] = {t: median(d) for t, d in per_type.items()
                                       if len(d) >= MIN_CYCLE_DEALS}
    cycles[None] = median(everyone) if len(everyone) >= MIN_CYCLE_DEALS else DEFAULT_CYCLE_DAYS
    return cycles


PLANNED = "planned"  # the deal's planned close date
CYCLE = "cycle"  # creation + the typical cycle of its type (or of every won deal)


def expected(deal: OpenDeal, cycles: Mapping[int | None, float], today: date
             ) -> tuple[date, str, float | None]:
    """(expected close day, basis PLANNED|CYCLE, the cycle's days when CYCLE)."""
    if deal.planned_close is not None:
        return max(deal.planned_close, today), PLANNED, None
    cycle = cycles.get(deal.type_id, cycles.get(None, DEFAULT_CYCLE_DAYS))
    return max((deal.created_at + timedelta(days=cycle)).date(), today), CYCLE, cycle


def expected_close(deal: OpenDeal, cycles: Mapping[int | None, float], today: date) -> date:
    return expected(deal, cycles, today)[0]


def months_from(today: date, count: int) -> list[str]:
    year, month = today.year, today.month
    labels = []
    for _ in range(count):
        labels.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return labels


def weighted(amount: Decimal, percent: int) -> Decimal:
    return (amount * Decimal(percent) / 100).quantize(CENT, ROUND_HALF_UP)


@dataclass
class Cell:
    deals: int = 0
    amount: Decimal = Decimal("0.00")
    weighted: Decimal = Decimal("0.00")


Row = dict[str, Cell]


def _row(months: Sequence[str]) -> Row:
    return {m: Cell() for m in [*months, LATER]}


def _whole(row: Row) -> Decimal:
    return sum((c.weighted for c in row.values()), Decimal("0.00"))


def _shown(row: Row) -> dict[str, dict[str, Any]]:
    return {m: asdict(c) for m, c in row.items()}


def _add(total: Row, by_manager: dict[int | None, Row], by_department: dict[str, Row],
         labels: Sequence[str], departments: Mapping[int, str], manager_id: int | None,
         slot: str, deals: int, amount: Decimal, value: Decimal) -> None:
    """Deals into their month's cell overall, of their manager and of its department."""
    # a manager's (department's) row made once, not on every deal as setdefault's default
    # would be
    mine = by_manager.get(manager_id)
    if mine is None:
        mine = by_manager[manager_id] = _row(labels)
    rows = [total, mine]
    department = departments.get(manager_id) if manager_id is not None else None
    if department:
        team = by_department.get(department)
        if team is None:
            team = by_department[department] = _row(labels)
        rows.append(team)
    for row in rows:
        cell = row[slot]
        cell.deals += deals
        cell.amount += amount
        cell.weighted += value


def pipeline(deals: Iterable[OpenDeal], cycles: Mapping[int | None, float], today: date,
             departments: Mapping[int, str], months: int = 6,
             listed: int = 0) -> dict[str, Any]:
    """{months [labels], total {month: {deals, amount, weighted}}, managers [{manager_id,
    by_month, weighted}], departments [{department, by_month, weighted}], unestimated
    {deals, amount}, weighted (the whole sum), deals: the ``listed`` biggest weighted
    [{deal_id, manager_id, amount, percent, manual, weighted, close_on, basis,
    cycle_days, month}]}; per manager/department biggest first."""
    labels = months_from(today, months)
    total = _row(labels)
    by_manager: dict[int | None, Row] = {}
    by_department: dict[str, Row] = {}
    unestimated = Cell()
    each: list[tuple[Decimal, int, OpenDeal, int, date, str, float | None, str]] = []
    for deal in deals:
        percent = deal.manual_percent if deal.manual_percent is not None else deal.percent
        if percent is None:
            unestimated.deals += 1
            unestimated.amount += deal.amount
            continue
        close_on, basis, cycle = expected(deal, cycles, today)
        label = f"{close_on.year:04d}-{close_on.month:02d}"
        slot = label if label in total else LATER
        value = weighted(deal.amount, percent)
        if listed:
            each.append((-value, deal.deal_id, deal, percent, close_on, basis, cycle, slot))
        _add(total, by_manager, by_department, labels, departments, deal.manager_id, slot,
             1, deal.amount, value)
    return _answer(labels, total, by_manager, by_department, unestimated, [
        {"deal_id": deal.deal_id, "manager_id": deal.manager_id, "amount": deal.amount,
         "percent": percent, "manual": deal.manual_percent is not None, "weighted": -value,
         "close_on": close_on, "basis": basis,
         "cycle_days": None if cycle is None else round(cycle, 1), "month": slot}
        # only the listed ones are made into rows (a page has thousands)
        for value, _, deal, percent, close_on, basis, cycle, slot
        in heapq.nsmallest(listed, each, key=lambda e: (e[0], e[1]))])


def _answer(labels: list[str], total: Row, by_manager: Mapping[int | None, Row],
            by_department: Mapping[str, Row], unestimated: Cell,
            deals: list[dict[str, Any]]) -> dict[str, Any]:
    managers = sorted(by_manager.items(), key=lambda kv: (-_whole(kv[1]), kv[0] or 0))
    teams = sorted(by_department.items(), key=lambda kv: (-_whole(kv[1]), kv[0]))
    return {"months": labels, "total": _shown(total), "weighted": _whole(total),
            "managers": [{"manager_id": m, "by_month": _shown(r), "weighted": _whole(r)}
                         for m, r in managers],
            "departments": [{"department": d, "by_month": _shown(r), "weighted": _whole(r)}
                            for d, r in teams],
            "unestimated": {"deals": unestimated.deals, "amount": unestimated.amount},
            "deals": deals}


def pipeline_of_cells(cells: Iterable[tuple[int | None, str, int, Decimal, Decimal]],
                      unestimated: tuple[int, Decimal], deals: list[dict[str, Any]],
                      labels: list[str], departments: Mapping[int, str]) -> dict[str, Any]:
    """``pipeline``'s answer from the estimated deals already summed per (manager, month
    slot): (manager_id, slot, deals, amount, weighted), the unestimated ones' (deals,
    amount) and the listed deals' rows, as the database sums them
    (pipeline_store.py).  A department's row is the sum of its managers' rows."""
    total = _row(labels)
    by_manager: dict[int | None, Row] = {}
    by_department: dict[str, Row] = {}
    for manager_id, slot, count, amount, value in cells:
        _add(total, by_manager, by_department, labels, departments, manager_id, slot, count,
             amount, value)
    return _answer(labels, total, by_manager, by_department,
                   Cell(unestimated[0], Decimal("0.00") + unestimated[1]), deals)
