"""Manager performance over a period (MISSION A7).  Pure: every figure from plain rows.

Per manager, for the period [start, end):
- **created**: deals created in it; **won** / **lost**: deals closed in it either way;
  **conversion**: won / (won + lost), percent to one decimal (None when none closed);
- **cycle**: days from creation to won of the deals won in it, average and median;
- **won amount**: their amounts; **received**: money received in it on the manager's deals;
- **calls made**: outbound calls started in it on the manager's deals; **missed**: inbound
  calls in it not answered;
- **first response**: over the deals created in it that had one, the average hours from
  creation to the first thing done on the deal (a move, an outbound call, a task done);
- now, whatever the period: **open without a task** (open deals with no open task) and
  **overdue tasks** (open tasks past due, by assignee).
Ranked by won amount, then conversion, then deals won.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from statistics import mean, median
from typing import Any, NamedTuple

ZERO = Decimal("0.00")


# plain tuples: a page builds one per deal, task and call, and a frozen dataclass costs
# several times as much to make
class Deal(NamedTuple):
    deal_id: int
    manager_id: int | None
    created_at: datetime
    closed_at: datetime | None
    outcome: str | None  # won / lost / None: open
    amount: Decimal


class Task(NamedTuple):
    deal_id: int | None
    assignee_id: int | None
    due_at: datetime | None
    completed_at: datetime | None


class Call(NamedTuple):
    deal_id: int | None  # the first deal the call was matched to
    direction: str
    outcome: str | None
    started_at: datetime


@dataclass
class Figures:
    manager_id: int | None
    created: int = 0
    won: int = 0
    lost: int = 0
    conversion: Decimal | None = None
    avg_cycle_days: Decimal | None = None
    median_cycle_days: Decimal | None = None
    won_amount: Decimal = ZERO
    received: Decimal = ZERO
    open_without_task: int = 0
    overdue_tasks: int = 0
    calls_made: int = 0
    calls_missed: int = 0
    first_response_hours: Decimal | None = None
    rank: int = 0
    _cycles: list[float] = field(default_factory=list, repr=False)
    _responses: list[float] = field(default_factory=list, repr=False)


def _one(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def performance(deals: Iterable[Deal], tasks: Iterable[Task], calls: Iterable[Call],
                receipts: Iterable[tuple[int, Decimal, date]],
                moves: Mapping[int, datetime], start: datetime, end: datetime,
                now: datetime) -> list[dict[str, Any]]:
    """``receipts``: (deal_id, amount, received_on); ``moves``: each deal's first move
    after its creation.  One row per manager seen, ranked (see the module)."""
    by_deal: dict[int, Deal] = {}
    rows: dict[int | None, Figures] = {}

    def row(manager: int | None) -> Figures:
        # looked up first: a Figures made on every call (setdefault's default) costs more
        # than the whole count on a page of ten thousand deals
        found = rows.get(manager)
        if found is None:
            found = rows[manager] = Figures(manager)
        return found

    for deal in deals:
        by_deal[deal.deal_id] = deal
        figures = row(deal.manager_id)
        if start <= deal.created_at < end:
            figures.created += 1
        if deal.closed_at is not None and start <= deal.closed_at < end:
            if deal.outcome == "won":
                figures.won += 1
                figures.won_amount += deal.amount
                figures._cycles.append((deal.closed_at - deal.created_at).total_seconds()
                                       / 86400)
            elif deal.outcome == "lost":
                figures.lost += 1
    first_done: dict[int, datetime] = {}

    def done(deal_id: int, moment: datetime) -> None:
        """Something done on the deal: its first response if the earliest since creation."""
        deal = by_deal.get(deal_id)
        if deal is not None and moment >= deal.created_at:
            first_done[deal_id] = min(first_done.get(deal_id, moment), moment)

    for deal_id, moment in moves.items():
        done(deal_id, moment)
    open_tasks: set[int] = set()
    for task in tasks:
        if task.completed_at is None:
            if task.deal_id is not None:
                open_tasks.add(task.deal_id)
            if task.due_at is not None and task.due_at < now:
                row(task.assignee_id).overdue_tasks += 1
        elif task.deal_id is not None:
            done(task.deal_id, task.completed_at)
    for call in calls:
        on = by_deal.get(call.deal_id) if call.deal_id is not None else None
        if on is None:
            continue
        if call.direction == "outbound":
            done(on.deal_id, call.started_at)
        if not start <= call.started_at < end:
            continue
        if call.direction == "outbound":
            row(on.manager_id).calls_made += 1
        elif call.direction == "inbound" and call.outcome != "answered":
            row(on.manager_id).calls_missed += 1
    for deal_id, amount, received_on in receipts:
        paid = by_deal.get(deal_id)
        if paid is not None and start.date() <= received_on < end.date():
            row(paid.manager_id).received += amount
    for deal in by_deal.values():
        if deal.outcome is None and deal.deal_id not in open_tasks:
            row(deal.manager_id).open_without_task += 1
        first = first_done.get(deal.deal_id)
        if start <= deal.created_at < end and first is not None:
            row(deal.manager_id)._responses.append(
                (first - deal.created_at).total_seconds() / 3600)
    return ranked(rows.values())


def ranked(rows: Iterable[Figures]) -> list[dict[str, Any]]:
    """Each manager's derived figures (conversion, cycle, first response) from the counts
    and the lists of cycle days and response hours, ranked (see the module)."""
    rows = list(rows)
    for figures in rows:
        closed = figures.won + figures.lost
        if closed:
            figures.conversion = _one(100 * figures.won / closed)
        if figures._cycles:
            figures.avg_cycle_days = _one(mean(figures._cycles))
            figures.median_cycle_days = _one(median(figures._cycles))
        if figures._responses:
            figures.first_response_hours = _one(mean(figures._responses))
    order = sorted(rows, key=lambda f: (-f.won_amount, -(f.conversion or -1), -f.won,
                                        f.manager_id or 0))
    answer = []
    for place, figures in enumerate(order, start=1):
        figures.rank = place
        answer.append({k: v for k, v in vars(figures).items() if not k.startswith("_")})
    return answer
