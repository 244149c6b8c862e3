"""Queries behind RFM and the BCG matrix (the rules are in ``loyalty.py`` and ``bcg.py``)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.analytics import loyalty
from services.analytics.models import (
    ClientGroupMember,
    DealLine,
    RfmHistory,
    RfmScore,
    ScheduledJob,
)

RFM_JOB = "rfm"
NO_LINE = "Без товарной линии"
NO_TYPE = "Без типа"


def paid(session: Session) -> list[loyalty.Paid]:
    """What each client paid: last day, number of receipts, sum (every currency as one:
    the CRM sells in roubles)."""
    rows = session.execute(text(
        "SELECT d.client_id, max(CAST(r.received_on AS date)), count(*), sum(r.amount)"
        " FROM receipts r JOIN deals d ON d.deal_id = r.deal_id"
        " WHERE d.client_id IS NOT NULL AND r.received_on IS NOT NULL AND r.amount > 0"
        " GROUP BY d.client_id"))
    return [loyalty.Paid(int(c), last, int(n), Decimal(total)) for c, last, n, total in rows]


# What each client paid, scored in the database: ``rank() - 1`` is how many clients are
# strictly lower, so ``1 + 5·(rank − 1) / n`` is loyalty.quintile_scorer's score (ties
# share one); an older last payment is a lower R.
SCORED = """
CREATE TEMPORARY TABLE rfm_new ON COMMIT DROP AS
WITH paid AS (
    SELECT d.client_id, max(CAST(r.received_on AS date)) AS last_paid_on,
           count(*) AS payments, sum(r.amount) AS amount
    FROM receipts r JOIN deals d ON d.deal_id = r.deal_id
    WHERE d.client_id IS NOT NULL AND r.received_on IS NOT NULL AND r.amount > 0
    GROUP BY d.client_id),
scored AS (
    SELECT client_id, last_paid_on, payments, amount,
           GREATEST(CAST(:today AS date) - last_paid_on, 0) AS recency_days,
           1 + (5 * (rank() OVER (ORDER BY last_paid_on) - 1)) / count(*) OVER () AS r,
           1 + (5 * (rank() OVER (ORDER BY payments) - 1)) / count(*) OVER () AS f,
           1 + (5 * (rank() OVER (ORDER BY amount) - 1)) / count(*) OVER () AS m
    FROM paid)
SELECT client_id, last_paid_on, payments, amount, recency_days, r, f, m,
       {segment} AS segment
FROM scored
"""


# the scheduled_jobs row that says every segment was announced once
ANNOUNCED = "rfm_segments_announced"


def recompute(session: Session, today: date, now: datetime) -> dict[str, Any]:
    """Score every paying client (one statement in the database: the rules of
    ``loyalty.py`` as SQL), store the scores and record each segment move; one transaction
    with the caller's commit.  ``changes``: every client whose segment moved, for the
    caller to publish in that transaction."""
    session.execute(text(SCORED.format(segment=loyalty.segment_case())), {"today": today})
    moved = cast(CursorResult[Any], session.execute(text(
        "INSERT INTO rfm_history (client_id, previous, segment, changed_at)"
        " SELECT n.client_id, o.segment, n.segment, :now FROM rfm_new n"
        " LEFT JOIN rfm_scores o ON o.client_id = n.client_id"
        " WHERE o.segment IS DISTINCT FROM n.segment"), {"now": now})).rowcount
    # every move for the event, also a client that dropped out (segment null: all its
    # receipts taken back), so a copy of the segments elsewhere never keeps a stale one
    # The first run on an installation announces every client, moved or not: scores made
    # before the event existed must reach the copies too (the client list's filter).
    announced = session.execute(text(
        "SELECT 1 FROM scheduled_jobs WHERE name = :name"), {"name": ANNOUNCED}).first()
    if announced is None:
        session.execute(insert(ScheduledJob).values(name=ANNOUNCED, due_at=now,
                                                    last_result="every segment announced")
                        .on_conflict_do_nothing())
    changes = [loyalty.Change(int(c), previous, segment) for c, previous, segment in
               session.execute(text(
                   "SELECT COALESCE(n.client_id, o.client_id), o.segment, n.segment"
                   " FROM rfm_new n FULL JOIN rfm_scores o ON o.client_id = n.client_id"
                   + ("" if announced is None else
                      " WHERE o.segment IS DISTINCT FROM n.segment")
                   + " ORDER BY 1"))]
    # the whole table is replaced: a client whose receipts were all taken back drops out
    session.execute(text("DELETE FROM rfm_scores"))
    session.execute(text(
        "INSERT INTO rfm_scores (client_id, recency_days, payments, amount, r, f, m, segment,"
        " last_paid_on, computed_at) SELECT client_id, recency_days, payments, amount, r, f,"
        " m, segment, last_paid_on, :now FROM rfm_new"), {"now": now})
    counts: dict[str, int] = dict(session.execute(text(
        "SELECT segment, count(*) FROM rfm_new GROUP BY segment")).all())
    session.execute(text("DROP TABLE rfm_new"))
    return {"clients": sum(counts.values()), "moved": int(moved), "computed_at": now,
            "segments": {code: int(counts.get(code, 0)) for code in loyalty.SEGMENTS},
            "changes": changes}


def claim_due(session: Session, name: str, now: datetime, first_due: datetime
              ) -> ScheduledJob | None:
    """The job's row when it is due and no other replica holds it (SKIP LOCKED)."""
    session.execute(insert(ScheduledJob).values(name=name, due_at=first_due, last_result="")
                    .on_conflict_do_nothing())
    return session.scalar(select(ScheduledJob).where(ScheduledJob.name == name,
                                                     ScheduledJob.due_at <= now)
                          .with_for_update(skip_locked=True))


def lock_job(session: Session, name: str, first_due: datetime) -> ScheduledJob:
    """The job's row, waiting for a run in progress (an on-demand run after it)."""
    session.execute(insert(ScheduledJob).values(name=name, due_at=first_due, last_result="")
                    .on_conflict_do_nothing())
    job = session.scalar(select(ScheduledJob).where(ScheduledJob.name == name)
                         .with_for_update())
    assert job is not None
    return job


def segments_of(session: Session, client_ids: Iterable[int]) -> dict[int, RfmScore]:
    ids = sorted({int(c) for c in client_ids})
    if not ids:
        return {}
    return {s.client_id: s for s in session.scalars(
        select(RfmScore).where(RfmScore.client_id.in_(ids)))}


def clients_in(session: Session, segment: str, limit: int, group: int | None = None
               ) -> list[int]:
    query = select(RfmScore.client_id).where(RfmScore.segment == segment)
    if group is not None:
        query = query.join(ClientGroupMember,
                           ClientGroupMember.client_id == RfmScore.client_id).where(
            ClientGroupMember.client_group_id == group)
    return [int(c) for c in session.scalars(query.order_by(RfmScore.client_id).limit(limit))]


def segment_counts(session: Session, group: int | None = None) -> dict[str, int]:
    """{segment: clients in it} (every segment, 0 when empty), of one group when given."""
    query = select(RfmScore.segment, func.count()).group_by(RfmScore.segment)
    if group is not None:
        query = query.join(ClientGroupMember,
                           ClientGroupMember.client_id == RfmScore.client_id).where(
            ClientGroupMember.client_group_id == group)
    counts = {str(k): int(n) for k, n in session.execute(query).tuples()}
    return {code: counts.get(code, 0) for code in loyalty.SEGMENTS}


def history_of(session: Session, client_id: int, limit: int = 100) -> list[RfmHistory]:
    return list(session.scalars(select(RfmHistory).where(RfmHistory.client_id == client_id)
                                .order_by(RfmHistory.id.desc()).limit(limit)))


# ----------------------------------------------------------------------------- BCG

def save_lines(session: Session, data: dict[str, Any]) -> None:
    """A deal's calculation lines (deals.calculation_saved), newer versions only."""
    deal_id, version = int(data["deal_id"]), int(data.get("version") or 0)
    # two calculations of one deal applied at once would each delete what the other
    # wrote: one at a time per deal (the lock ends with the transaction)
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                    {"key": f"deal_lines:{deal_id}"})
    known = session.scalar(select(func.max(DealLine.version))
                           .where(DealLine.deal_id == deal_id))
    if known is not None and known >= version:
        return
    session.execute(delete(DealLine).where(DealLine.deal_id == deal_id))
    for i, line in enumerate(data.get("lines") or []):
        session.add(DealLine(deal_id=deal_id, position=i, version=version,
                             product_line=(line.get("product_line") or None),
                             amount=Decimal(str(line.get("amount") or "0"))))
    if not data.get("lines"):  # an emptied calculation still records its version
        session.add(DealLine(deal_id=deal_id, position=-1, version=version,
                             product_line=None, amount=Decimal("0")))


def _bounds(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return (datetime.combine(start, time(), tz).astimezone(UTC),
            datetime.combine(end + timedelta(days=1), time(), tz).astimezone(UTC))


# Both periods in one pass: each won deal's lines (or the deal itself when it has none)
# grouped by period, product line and deal type; the caller sums what it needs.
WON_SALES = """
SELECT CASE WHEN d.closed_at >= :start THEN 'current' ELSE 'previous' END AS period,
       l.product_line, d.type_id, l.deal_id IS NOT NULL AS lined,
       sum(COALESCE(l.amount, d.amount)) AS amount,
       -- by deal type each deal counts once, with its own amount
       sum(CASE WHEN l.position IS NULL OR l.position = 0 THEN d.amount ELSE 0 END) AS deal_amount
FROM deals d
LEFT JOIN deal_lines l ON l.deal_id = d.deal_id AND l.position >= 0
WHERE d.status = ANY(:won) AND d.closed_at >= :before AND d.closed_at < :end
GROUP BY 1, 2, 3, 4
"""


def won_sales(session: Session, start: date, end: date, previous_start: date,
              tz: ZoneInfo, won: list[str]
              ) -> dict[str, tuple[dict[str, Decimal], dict[str, Decimal]]]:
    """Sales of the deals won in the period and in the previous one (from
    ``previous_start`` to the day before ``start``): {period: (by product line — a deal
    without catalogue lines under NO_LINE —, by deal type id)}."""
    low, high = _bounds(start, end, tz)
    before, _ = _bounds(previous_start, start, tz)
    out: dict[str, tuple[dict[str, Decimal], dict[str, Decimal]]] = {
        "current": (defaultdict(Decimal), defaultdict(Decimal)),
        "previous": (defaultdict(Decimal), defaultdict(Decimal))}
    rows = session.execute(text(WON_SALES), {"start": low, "before": before, "end": high,
                                             "won": list(won)})
    for period, line, type_id, lined, amount, deal_amount in rows:
        by_line, by_type = out[period]
        by_line[(line or NO_LINE) if lined else NO_LINE] += Decimal(amount)
        by_type[str(type_id) if type_id is not None else ""] += Decimal(deal_amount)
    return {k: (dict(a), dict(b)) for k, (a, b) in out.items()}
