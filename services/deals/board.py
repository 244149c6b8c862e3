"""The deals list and kanban board as SQL: filters, per-status counts and sums, pages.

Pages are keyset pages (``id < after``, newest first), so the hundredth page costs what
the first does; every query is shaped to use ``ix_deals_manager_status`` or
``ix_deals_status``.  Column totals come from ``deal_totals`` when only the manager is
filtered, else from an index-only count."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    func,
    literal,
    literal_column,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session

from services.deals import text_plan
from services.deals.domain import DealFilter, Sort
from services.deals.models import Deal, DealTotal, Status
from services.deals.schemas import CARD_COLUMNS, card_dict, status_dict
from services.kit.errors import ValidationError

# The same expression as the trigram index ix_deals_search, written out so that the
# planner recognises it.
SEARCH_TEXT: ColumnClause[Any] = literal_column("(deals.name || ' ' || deals.client_name)")
# The same text grouped the other way: equal on every row, but not the index's expression,
# so the planner checks a condition on it row by row and never asks the index with it
# (text_plan: the index is asked for a fragment's rare parts only).
ROW_TEXT: ColumnClause[Any] = literal_column("(deals.name || (' ' || deals.client_name))")
MAX_PAGE = 200
# the table's sort keys as columns ("status" is the funnel's order, paged status by status)
SORT_COLUMNS: dict[str, Any] = {key: Deal.__table__.c[name] for key, name in (
    ("name", "name"), ("amount", "amount"), ("created_at", "created_at"),
    ("updated_at", "updated_at"), ("planned_close_on", "planned_close_on"),
    ("manager", "manager_id"))}
# a text filter selecting at most this many deals is counted and paged from one scan
FEW = 1000


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


Plans = dict[str, text_plan.TextPlan]


def text_plans(db: Session, f: DealFilter) -> Plans:
    """The plan of each text filter given (text_plan)."""
    return {field: text_plan.plan(db, fragment)
            for field, fragment in (("q", f.q), ("client", f.client)) if fragment}


def contains_text(fragment: str, plan: text_plan.TextPlan | None) -> list[ColumnElement[bool]]:
    """The deal's or its client's name contains ``fragment`` (ILIKE), on the plan's index."""
    pattern = f"%{_escape_like(fragment)}%"
    if plan is not None and plan.windows:
        # the rare windows find the candidates on the index, the whole fragment decides
        return [*(SEARCH_TEXT.ilike(f"%{_escape_like(w)}%") for w in plan.windows),
                ROW_TEXT.ilike(pattern)]
    return [SEARCH_TEXT.ilike(pattern)]


def conditions(f: DealFilter, statuses: list[Status], tz: tzinfo,
               plans: Plans | None = None) -> list[ColumnElement[bool]]:
    """Every filter as conditions; ``plans``: how the text filters use the index."""
    plans = plans or {}
    where: list[ColumnElement[bool]] = []
    if f.manager_id is not None:
        where.append(Deal.manager_id == f.manager_id)
    if f.statuses:
        by_code = {s.code: s.id for s in statuses}
        unknown = [c for c in f.statuses if c not in by_code]
        if unknown:
            raise ValidationError(f"status: unknown status '{unknown[0]}'", field="status",
                                  key="deal.status_unknown", params={"status": unknown[0]})
        where.append(Deal.status_id.in_([by_code[c] for c in f.statuses]))
    if f.type_id is not None:
        where.append(Deal.type_id == f.type_id)
    if f.client_id is not None:
        where.append(Deal.client_id == f.client_id)
    if f.amount_min is not None:
        where.append(Deal.amount >= f.amount_min)
    if f.amount_max is not None:
        where.append(Deal.amount <= f.amount_max)
    # periods are whole days in the company's time zone, both ends included
    if f.created_from is not None:
        where.append(Deal.created_at >= datetime.combine(f.created_from, time(), tz))
    if f.created_to is not None:
        where.append(Deal.created_at < datetime.combine(f.created_to + timedelta(days=1),
                                                         time(), tz))
    if f.closed_from is not None:
        where.append(Deal.closed_at >= datetime.combine(f.closed_from, time(), tz))
    if f.closed_to is not None:
        where.append(Deal.closed_at < datetime.combine(f.closed_to + timedelta(days=1),
                                                        time(), tz))
    if f.has_task is True:
        where.append(Deal.next_reminder_at.is_not(None))
    elif f.has_task is False:
        where.append(Deal.next_reminder_at.is_(None))
    if f.q:
        where.extend(contains_text(f.q, plans.get("q")))
    if f.client:
        # the first test lets the trigram index find candidates, the second is the filter
        where.extend([*contains_text(f.client, plans.get("client")),
                      Deal.client_name.ilike(f"%{_escape_like(f.client)}%")])
    return where


def _page_limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


def totals(db: Session, f: DealFilter,
           where: list[ColumnElement[bool]]) -> dict[int, tuple[int, Decimal]]:
    """Count and sum per status.  The usual boards (one manager's, everyone's) read the
    trigger-kept ``deal_totals``, so a million deals cost what a hundred do; any other
    filter counts the deals it selects."""
    if f == DealFilter(manager_id=f.manager_id, statuses=f.statuses):
        stmt = select(DealTotal.status_id, func.sum(DealTotal.deals),
                      func.sum(DealTotal.amount)).group_by(DealTotal.status_id)
        if f.manager_id is not None:
            stmt = stmt.where(DealTotal.manager_key == f.manager_id)
    else:
        stmt = (select(Deal.status_id, func.count(), func.coalesce(func.sum(Deal.amount), 0))
                .where(*where).group_by(Deal.status_id))
    return {status_id: (int(count), Decimal(amount))
            for status_id, count, amount in db.execute(stmt).all()}


def _page_query(where: list[ColumnElement[bool]], after: int | None, limit: int) -> Any:
    stmt = select(*CARD_COLUMNS).where(*where)
    if after is not None:
        stmt = stmt.where(Deal.id < after)
    return stmt.order_by(Deal.id.desc()).limit(limit + 1)


def _page(rows: Sequence[Any], limit: int, codes: dict[int, str]) -> dict[str, Any]:
    cards = [card_dict(r, codes) for r in rows[:limit]]
    return {"deals": cards, "next_after": cards[-1]["id"] if len(rows) > limit else None}


def board(db: Session, f: DealFilter, statuses: list[Status], tz: tzinfo,
          per_column: int = 20) -> dict[str, Any]:
    """Every column (a status) with its count, total amount and first page of cards."""
    limit = _page_limit(per_column)
    where = conditions(f, statuses, tz, text_plans(db, f))
    shown = [s for s in statuses if not f.statuses or s.code in f.statuses]
    codes = {s.id: s.code for s in statuses}
    rows: dict[int, list[Any]] = {s.id: [] for s in shown}
    few = _few_matches(db, where) if shown and (f.q or f.client) else None
    if few is not None:
        sums = totals_of(few)
        for row in few:
            if row.status_id in rows:
                rows[row.status_id].append(row)
    else:
        sums = totals(db, f, where)
        if shown:
            # one round trip: a page per status, each an index range scan
            pages = union_all(*[_page_query([*where, Deal.status_id == s.id], None, limit)
                                for s in shown]).subquery()
            for row in db.execute(select(pages)).all():
                rows[row.status_id].append(row)
    columns = []
    for s in shown:
        ordered = sorted(rows[s.id], key=lambda r: r.id, reverse=True)[:limit + 1]
        count, amount = sums.get(s.id, (0, Decimal("0.00")))
        columns.append({"status": status_dict(s), "count": count, "amount": amount,
                        **_page(ordered, limit, codes)})
    return {"columns": columns,
            "total": {"count": sum(c["count"] for c in columns),
                      "amount": sum((c["amount"] for c in columns), Decimal("0.00"))}}


def _few_matches(db: Session, where: list[ColumnElement[bool]]) -> list[Any] | None:
    """Every card a text filter selects, when they are few (None: more than FEW).

    A substring's trigram index scan reads the common trigrams of the names in full, so it
    costs the same whether it feeds the totals or one column's page: run it once, and
    count, sum and page the few cards here instead of a scan for the totals and one per
    column.  When the text is common, this stops at FEW + 1 rows (the planner walks the
    table until then) and the board is read column by column as without a text."""
    found = list(db.execute(select(*CARD_COLUMNS).where(*where).limit(FEW + 1)).all())
    return found if len(found) <= FEW else None


def totals_of(cards: list[Any]) -> dict[int, tuple[int, Decimal]]:
    """Count and sum per status of these cards."""
    sums: dict[int, tuple[int, Decimal]] = {}
    for card in cards:
        count, amount = sums.get(card.status_id, (0, Decimal("0.00")))
        sums[card.status_id] = (count + 1, amount + (card.amount or Decimal("0")))
    return sums


def column_page(db: Session, f: DealFilter, statuses: list[Status], tz: tzinfo,
                status: Status, after: int | None, limit: int) -> dict[str, Any]:
    """The next page of one column (infinite scroll)."""
    size = _page_limit(limit)
    where = [*conditions(f, statuses, tz, text_plans(db, f)), Deal.status_id == status.id]
    rows = db.execute(_page_query(where, after, size)).all()
    return _page(rows, size, {s.id: s.code for s in statuses})


def table_page(db: Session, f: DealFilter, statuses: list[Status], tz: tzinfo,
               after: int | None, limit: int, sort: Sort | None = None) -> dict[str, Any]:
    """A page of the table mode: every status, newest first or in the ``sort`` order.

    ``after`` stays the last card's id in every order: its sort value is read back by
    primary key, so the page continues from ``(value, id)`` with a keyset condition."""
    size = _page_limit(limit)
    where = conditions(f, statuses, tz, text_plans(db, f))
    if sort is None:
        rows = list(db.execute(_page_query(where, after, size)).all())
    elif sort.key == "status":
        shown = [s for s in statuses if not f.statuses or s.code in f.statuses]
        rows = _by_status(db, where, shown, after, size, sort.descending)
    else:
        rows = _sorted(db, where, SORT_COLUMNS[sort.key], after, size, sort.descending)
    page = _page(rows, size, {s.id: s.code for s in statuses})
    return {"items": page["deals"], "next_after": page["next_after"]}


def find_page(db: Session, f: DealFilter, number: int | None, statuses: list[Status],
              tz: tzinfo, limit: int) -> dict[str, Any]:
    """The header search's deals in one round trip: the deal with this ``number`` first
    (when there is one), then the newest deals matching the filter ``f``."""
    size = _page_limit(limit)
    exact = (list(db.execute(select(*CARD_COLUMNS).where(Deal.id == number)).all())
             if number is not None else [])
    where = conditions(f, statuses, tz, text_plans(db, f))
    rows = [r for r in db.execute(_page_query(where, None, size)).all()
            if all(r.id != e.id for e in exact)]
    codes = {s.id: s.code for s in statuses}
    return {"items": [card_dict(r, codes) for r in [*exact, *rows][:size]]}


def _sorted(db: Session, where: list[ColumnElement[bool]], column: Any, after: int | None,
            size: int, descending: bool) -> list[Any]:
    """Keyset pages over ``(column, id)``, then the deals without a value (by id): two
    index range scans rather than one query whose ``OR ... IS NULL`` no index serves."""
    last: tuple[Any, int] | None = None
    if after is not None:
        found = db.execute(select(column).where(Deal.id == after)).first()
        if found is None:  # the deal is gone: nothing to continue from
            return []
        last = (found[0], after)
    by_id = Deal.id.desc() if descending else Deal.id.asc()
    rows: list[Any] = []
    if last is None or last[0] is not None:
        stmt = select(*CARD_COLUMNS).where(*where)
        if column.nullable:
            stmt = stmt.where(column.is_not(None))
        if last is not None:
            key = tuple_(column, Deal.id)
            bound = tuple_(literal(last[0], column.type), literal(last[1], Deal.id.type))
            stmt = stmt.where(key < bound if descending else key > bound)
        stmt = stmt.order_by(column.desc() if descending else column.asc(), by_id)
        rows = list(db.execute(stmt.limit(size + 1)).all())
    if len(rows) <= size and column.nullable:
        stmt = select(*CARD_COLUMNS).where(*where, column.is_(None))
        if last is not None and last[0] is None:
            stmt = stmt.where(Deal.id < last[1] if descending else Deal.id > last[1])
        rows += db.execute(stmt.order_by(by_id).limit(size + 1 - len(rows))).all()
    return rows


def _by_status(db: Session, where: list[ColumnElement[bool]], statuses: list[Status],
               after: int | None, size: int, descending: bool) -> list[Any]:
    """The funnel's order: status by status (by position), each status's deals by id, one
    index range scan per status until the page is full."""
    ordered = sorted(statuses, key=lambda s: (s.position, s.id), reverse=descending)
    start, after_id = 0, None
    if after is not None:
        status_id = db.scalar(select(Deal.status_id).where(Deal.id == after))
        ids = [s.id for s in ordered]
        if status_id not in ids:
            return []
        start, after_id = ids.index(status_id), after
    rows: list[Any] = []
    for n, status in enumerate(ordered[start:]):
        stmt = select(*CARD_COLUMNS).where(*where, Deal.status_id == status.id)
        if n == 0 and after_id is not None:
            stmt = stmt.where(Deal.id < after_id if descending else Deal.id > after_id)
        stmt = stmt.order_by(Deal.id.desc() if descending else Deal.id.asc())
        rows += db.execute(stmt.limit(size + 1 - len(rows))).all()
        if len(rows) > size:
            break
    return rows
