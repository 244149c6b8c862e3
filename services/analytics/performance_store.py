"""Manager performance summed in the database: one statement gives each manager's counts
and sums, and the lists its averages and medians are taken over (cycle days of the deals
won, hours to the first response), so a page no longer reads every deal, task, call and
receipt of the period into Python.  The rules are performance.py's (``ranked`` makes the
derived figures and the ranking); ``activity.figures`` with ``performance.performance``
stays the reference the tests compare this with."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.analytics import performance

_IN = "c.created_at >= :start AND c.created_at < :end"
_CLOSED_IN = "c.closed_at >= :start AND c.closed_at < :end"

_FIGURES = """
WITH chosen AS MATERIALIZED (
  SELECT d.deal_id, d.manager_id, d.created_at, d.closed_at, d.amount,
         CASE WHEN d.status = ANY(:won) THEN 'won' WHEN d.status = ANY(:lost) THEN 'lost'
         END AS outcome
  FROM deals d
  -- a deal closed before the period that was paid or called in it counts too (joined:
  -- as an IN list the planner scanned it again for every deal)
  LEFT JOIN (SELECT deal_id FROM receipts
             WHERE received_on >= :start_day AND received_on < :end_day
             UNION SELECT deal_id FROM calls
             WHERE started_at >= :start AND started_at < :end AND deal_id IS NOT NULL)
    AS touched ON touched.deal_id = d.deal_id
  WHERE d.created_at IS NOT NULL
    AND (d.created_at BETWEEN :start AND :end OR d.closed_at BETWEEN :start AND :end
         OR d.status = ANY(:open) OR touched.deal_id IS NOT NULL)
    {deals_where}),
-- the first thing done on a deal since its creation: its first move (when not before
-- the creation), a task done or an outbound call
firsts AS (
  SELECT deal_id, min(at) AS at FROM (
    SELECT c.deal_id, m.at FROM chosen c,
      LATERAL (SELECT min(t.at) AS at FROM transitions t
               WHERE t.deal_id = c.deal_id AND t.seq > 1) m
    WHERE m.at >= c.created_at
    UNION ALL
    SELECT c.deal_id, t.completed_at FROM chosen c JOIN tasks t ON t.deal_id = c.deal_id
    WHERE t.completed_at >= c.created_at
    UNION ALL
    SELECT c.deal_id, k.started_at FROM chosen c JOIN calls k ON k.deal_id = c.deal_id
    WHERE k.direction = 'outbound' AND k.started_at >= c.created_at) AS done
  GROUP BY deal_id),
rows AS (
  SELECT c.manager_id,
         count(*) FILTER (WHERE {in_}) AS created,
         count(*) FILTER (WHERE c.outcome = 'won' AND {closed_in}) AS won,
         count(*) FILTER (WHERE c.outcome = 'lost' AND {closed_in}) AS lost,
         sum(c.amount) FILTER (WHERE c.outcome = 'won' AND {closed_in}) AS won_amount,
         array_agg(extract(epoch FROM c.closed_at - c.created_at))
           FILTER (WHERE c.outcome = 'won' AND {closed_in}) AS cycles,
         NULL::numeric AS received,
         count(*) FILTER (WHERE c.outcome IS NULL AND NOT EXISTS (
           SELECT 1 FROM tasks t WHERE t.deal_id = c.deal_id AND t.completed_at IS NULL))
           AS open_without_task,
         0 AS overdue, 0 AS made, 0 AS missed,
         array_agg(extract(epoch FROM f.at - c.created_at))
           FILTER (WHERE {in_} AND f.at IS NOT NULL) AS responses
  FROM chosen c LEFT JOIN firsts f ON f.deal_id = c.deal_id
  GROUP BY c.manager_id
  UNION ALL
  SELECT c.manager_id, 0, 0, 0, NULL, NULL, NULL, 0, 0,
         count(*) FILTER (WHERE k.direction = 'outbound'),
         count(*) FILTER (WHERE k.direction = 'inbound'
                          AND k.outcome IS DISTINCT FROM 'answered'), NULL
  FROM calls k JOIN chosen c ON c.deal_id = k.deal_id
  WHERE k.started_at >= :start AND k.started_at < :end
  GROUP BY c.manager_id
  UNION ALL
  SELECT c.manager_id, 0, 0, 0, NULL, NULL, sum(r.amount), 0, 0, 0, 0, NULL
  FROM receipts r JOIN chosen c ON c.deal_id = r.deal_id
  WHERE r.received_on >= :start_day AND r.received_on <> ''
    AND left(r.received_on, 10) >= :start_day AND left(r.received_on, 10) < :end_day
  GROUP BY c.manager_id
  UNION ALL
  -- open tasks past due, by assignee (any task without a slice; else those of the chosen
  -- deals, or of the slice's managers)
  SELECT t.assignee_id, 0, 0, 0, NULL, NULL, NULL, 0, count(*), 0, 0, NULL
  FROM tasks t WHERE t.completed_at IS NULL AND t.due_at < :now {tasks_where}
  GROUP BY t.assignee_id)
-- one row per manager of the first part holds the lists: max() picks it
SELECT manager_id, sum(created)::bigint, sum(won)::bigint, sum(lost)::bigint,
       sum(won_amount), max(cycles), sum(received), sum(open_without_task)::bigint,
       sum(overdue)::bigint, sum(made)::bigint, sum(missed)::bigint, max(responses)
FROM rows
GROUP BY manager_id"""


def statement(kinds: Mapping[str, str], start: datetime, end: datetime, now: datetime,
              managers: set[int] | None, client_group: int | None = None
              ) -> tuple[str, dict[str, Any]]:
    """The one statement of a page and its parameters (the bench runs it as its SQL)."""
    deals_where, tasks_where = "", ""
    if managers is not None:
        deals_where += " AND d.manager_id = ANY(:managers)"
        tasks_where = (" AND (t.assignee_id = ANY(:managers)"
                       " OR t.deal_id IN (SELECT deal_id FROM chosen))")
    if client_group is not None:
        deals_where += " AND d.client_group_id = :client_group"
        # a task without a deal belongs to no client's group
        tasks_where = " AND t.deal_id IN (SELECT deal_id FROM chosen)"
    sql = (_FIGURES.replace("{in_}", _IN).replace("{closed_in}", _CLOSED_IN)
           .replace("{deals_where}", deals_where).replace("{tasks_where}", tasks_where))
    return sql, {
        "start": start, "end": end, "now": now,
        "start_day": start.date().isoformat(), "end_day": end.date().isoformat(),
        "won": [c for c, k in kinds.items() if k == "won"],
        "lost": [c for c, k in kinds.items() if k == "lost"],
        "open": [c for c, k in kinds.items() if k == "open"],
        "managers": sorted(managers) if managers is not None else None,
        "client_group": client_group}


# the planner prices the first-move look-ups (one index probe per deal) above
# jit_above_cost, and compiling the statement took longer than running it (100 ms of 150
# at 20,000 deals); SET LOCAL: only the request's transaction is affected
NO_JIT = "SET LOCAL jit = off"


def figures(session: Session, kinds: Mapping[str, str], start: datetime, end: datetime,
            now: datetime, managers: set[int] | None,
            client_group: int | None = None) -> list[dict[str, Any]]:
    """``activity.figures``' answer (see it for which deals, tasks, calls and receipts
    count), summed in one statement."""
    sql, params = statement(kinds, start, end, now, managers, client_group)
    session.execute(text(NO_JIT))
    rows = session.execute(text(sql), params).tuples().all()
    made = []
    for (manager_id, created, won, lost, won_amount, cycles, received, without_task,
         overdue, calls_made, calls_missed, responses) in rows:
        row = performance.Figures(
            manager_id, created=created, won=won, lost=lost,
            won_amount=performance.ZERO + (won_amount or 0),
            received=performance.ZERO + (received or 0), open_without_task=without_task,
            overdue_tasks=overdue, calls_made=calls_made, calls_missed=calls_missed)
        # the seconds as exact numbers: float() of them is what total_seconds() gives
        row._cycles = [float(s) / 86400 for s in cycles or ()]
        row._responses = [float(s) / 3600 for s in responses or ()]
        made.append(row)
    return performance.ranked(made)

