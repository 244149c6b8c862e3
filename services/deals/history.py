"""The deals' replayable history in columns, for a projection rebuilt from scratch (the
analytics rebuild): thousands of deals per call, each column one array built by
PostgreSQL, so that neither side spends time per row on dicts, datetimes or Decimals.

``history_columns(after, limit)`` answers a keyset page by id::

    {"deals": {"id": [...], "name": [...], ..., "history_count": [...]},
     "history": {"field": [...], "old_value": [...], "new_value": [...],
                 "changed_at": [...]},
     "next_after": last id | None}

``deals`` holds one entry per deal and column; ``history`` the changes of the replayed
fields of every deal of the page, deal after deal (as ``deals.id``) and oldest first
within a deal: the first ``history_count[0]`` entries are the first deal's, and so on.
Moments are ISO 8601 text in UTC, money is decimal text."""
from __future__ import annotations

from typing import Any

from sqlalchemy import text

from services.deals import domain
from services.deals.base import DealsBase
from services.kit.dependencies import Work
from services.kit.entrypoints import rpc

MAX_LIMIT = 20_000
_ISO = """to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
DEAL_COLUMNS = ("id", "name", "client_id", "client_name", "manager_id", "type_id", "status",
                "stage", "amount", "currency", "created_at", "closed_at", "version",
                "loss_reason_id", "loss_reason", "history_count")
HISTORY_COLUMNS = ("field", "old_value", "new_value", "changed_at")

# the page's deals as one row of arrays; a deal's history count comes with it, so that
# the caller can cut the history arrays without a deal id per change.  Every array is
# gathered from one sorted input (``page`` is read in id order and aggregated as it
# comes): an ``ORDER BY`` inside each ``array_agg`` sorted the page once per column.  The
# order holds because the aggregate reads the ordered subquery directly, in one process:
# ``history_columns`` turns parallel plans off for its transaction.
_DEALS = text(f"""
SELECT {", ".join(f"array_agg({c})" for c in DEAL_COLUMNS)} FROM (
  SELECT d.id, d.name, d.client_id, d.client_name, d.manager_id, d.type_id,
         s.code AS status, st.code AS stage, CAST(d.amount AS text) AS amount, d.currency,
         {_ISO.format("d.created_at")} AS created_at,
         {_ISO.format("d.closed_at")} AS closed_at, d.version, d.loss_reason_id,
         r.name AS loss_reason,
         (SELECT count(*) FROM deal_history h
          WHERE h.deal_id = d.id AND h.field = ANY(:fields)) AS history_count
  FROM deals d JOIN statuses s ON s.id = d.status_id
  LEFT JOIN stages st ON st.id = d.stage_id
  LEFT JOIN loss_reasons r ON r.id = d.loss_reason_id
  WHERE d.id > :after ORDER BY d.id LIMIT :limit) AS page
""")
# the range (after, last] rather than a list of ids: one index range scan, sorted once
# for the four arrays (as ``_DEALS``)
_HISTORY = text(f"""
SELECT {", ".join(f"array_agg({c})" for c in HISTORY_COLUMNS[:3])},
       array_agg({_ISO.format("changed_at")})
FROM (SELECT field, old_value, new_value, changed_at FROM deal_history
      WHERE deal_id > :after AND deal_id <= :last AND field = ANY(:fields)
      ORDER BY deal_id, id) AS changes
""")
# a parallel plan could hand an aggregate its rows out of the subquery's order
_SERIAL = text("SET LOCAL max_parallel_workers_per_gather = 0")

def history_columns(db: Work, after: Any, limit: Any) -> dict[str, Any]:
    after_id = domain.identifier(after, "after", required=False) or 0
    limit = max(1, min(domain.identifier(limit, "limit"), MAX_LIMIT))
    fields = list(domain.REPLAYED_FIELDS)
    db.execute(_SERIAL)
    row = db.execute(_DEALS, {"after": after_id, "limit": limit, "fields": fields}).one()
    deals = {name: list(values or ()) for name, values in zip(DEAL_COLUMNS, row, strict=True)}
    ids = deals["id"]
    history: dict[str, list[Any]] = {name: [] for name in HISTORY_COLUMNS}
    if ids:
        found = db.execute(_HISTORY, {"after": after_id, "last": ids[-1],
                                      "fields": fields}).one()
        history = {name: list(values or ())
                   for name, values in zip(HISTORY_COLUMNS, found, strict=True)}
    return {"deals": deals, "history": history,
            "next_after": ids[-1] if len(ids) == limit else None}


class HistoryEntrypoints(DealsBase):
    """Replaying every deal from scratch (the analytics rebuild)."""

    @rpc
    def history_columns(self, after: int | None = None, limit: int = 10_000) -> dict[str, Any]:
        """Every deal's replayable history in columns, by keyset pages."""
        return history_columns(self.db, after, limit)
