"""What the client pages show of client loyalty (RFM, from the analytics service): the
segment column of the client list, the segment and its history on the client page.  The
list's segment filter is the clients service's own (``search_clients`` ``segment``: it
keeps the segments analytics announces), so it works with analytics down; the column
says when analytics does not answer."""
from __future__ import annotations

from typing import Any

from flask import current_app

from gateway.aggregate import Panel, call
from gateway.remote import remote_many

# the segment codes analytics knows (services/analytics/loyalty.py RULES), in its order
SEGMENTS = ("champions", "loyal", "promising", "at_risk", "hibernating", "lost")


def _deadline() -> float:
    return float(current_app.config["CRM"].get("LOYALTY_DEADLINE", 1.0))


def segments_for(items: list[dict[str, Any]]) -> Panel:
    """{client id: score} for the visible rows, in one call."""
    ids = [int(c["id"]) for c in items]
    if not ids:
        return Panel(data={})
    panel = remote_many({"s": call("analytics", "client_segments", ids)},
                        budget=_deadline())["s"]
    if panel.ok:
        panel.data = {int(k): v for k, v in panel.data.items()}
    return panel


def client_groups() -> list[dict[str, Any]]:
    """The groups of companies for a report's filter ([] when clients does not answer:
    the report then offers no group to pick)."""
    panel = remote_many({"g": call("clients", "list_client_groups")}, budget=_deadline())["g"]
    return list(panel.data) if panel.ok else []
