"""The header's two counts: unread notifications (the bell) and open leads (the menu).

Both are asked together on the first use in a page, under one short deadline: asked one
after the other, every page waited for each deadline in turn when its services were down.
A page that already asked for the bell with its own data (g.unread) is not asked again."""
from __future__ import annotations

from typing import Any

from flask import g

from gateway.aggregate import Call, call
from gateway.auth import can
from gateway.remote import remote_many

WAIT = 0.5  # seconds: a count the header cannot get by then is not shown


def counts() -> dict[str, int | None]:
    """{"unread": n or None, "leads": n or None}; None when not asked or not answered."""
    if "header_counts" in g:
        found: dict[str, int | None] = g.header_counts
        return found
    calls: dict[str, Call] = {}
    if g.get("user") is None:
        return {"unread": None, "leads": None}
    if "unread" not in g:
        calls["unread"] = call("notifications", "unread_count", g.user.id)
    if can("deals"):
        calls["leads"] = call("intake", "count_open")
    panels = remote_many(calls, budget=WAIT) if calls else {}
    found = {key: _count(panels[key].data) if key in panels and panels[key].ok else None
             for key in ("unread", "leads")}
    if "unread" in g:
        found["unread"] = _count(g.unread)
    g.header_counts = found
    return found


def _count(value: Any) -> int | None:
    return None if value is None else int(value)
