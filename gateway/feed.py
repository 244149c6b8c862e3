"""The deal feed: comments, reminders, calls and receipts merged in time order (D8)."""
from __future__ import annotations

from typing import Any


def _entry(kind: str, at: Any, item: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "at": str(at or ""), "item": item}


def merge_feed(calls: list[dict[str, Any]] | None, receipts: list[dict[str, Any]] | None,
               entries: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Newest first.  ``entries`` are the deal's own feed lines (comments, reminders)."""
    feed = [_entry(e.get("kind", "comment"), e.get("created_at"), e) for e in entries or []]
    feed += [_entry("call", c.get("started_at"), c) for c in calls or []]
    feed += [_entry("receipt", r.get("created_at") or r.get("received_on"), r)
             for r in receipts or []]
    return sorted(feed, key=lambda e: e["at"], reverse=True)
