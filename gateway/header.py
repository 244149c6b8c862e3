"""The header's two counts: unread notifications (the bell) and open leads (the menu).

Both are asked together on the first use in a page, under one short deadline: asked one
after the other, every page waited for each deadline in turn when its services were down.
A page that already asked for the bell with its own data (g.unread) is not asked again;
a page that knows it will render the header sends both with its own calls (``ask_early``),
so that they travel while it waits for its data instead of after it."""
from __future__ import annotations

import time
from typing import Any

from flask import g

from gateway.aggregate import Call, call, collect, send
from gateway.auth import can
from gateway.remote import remote_many, rpc

WAIT = 0.5  # seconds: a count the header cannot get by then is not shown


def _calls(unread: bool = True) -> dict[str, Call]:
    calls: dict[str, Call] = {}
    if unread and "unread" not in g:
        calls["unread"] = call("notifications", "unread_count", g.user.id)
    if can("deals"):
        calls["leads"] = call("intake", "count_open")
    return calls


def ask_early(unread: bool = True) -> None:
    """Send the header's counts now, before the page's own calls are waited for; the
    header's ``counts()`` then only collects the answers (waiting no longer than WAIT
    from now).  ``unread=False``: the page's own data brings the bell's count (g.unread)."""
    if g.get("user") is None or "header_counts" in g or "header_sent" in g:
        return
    calls = _calls(unread)
    if calls:
        g.header_sent = (send(rpc(), calls, f"gateway.{g.request_id}", timeout=WAIT),
                         time.monotonic() + WAIT)


def counts() -> dict[str, int | None]:
    """{"unread": n or None, "leads": n or None}; None when not asked or not answered."""
    if "header_counts" in g:
        found: dict[str, int | None] = g.header_counts
        return found
    if g.get("user") is None:
        return {"unread": None, "leads": None}
    if "header_sent" in g:
        sent, deadline = g.pop("header_sent")
        panels = collect(sent, deadline)
    else:
        calls = _calls()
        panels = remote_many(calls, budget=WAIT) if calls else {}
    found = {key: _count(panels[key].data) if key in panels and panels[key].ok else None
             for key in ("unread", "leads")}
    if "unread" in g:
        found["unread"] = _count(g.unread)
    g.header_counts = found
    return found


def _count(value: Any) -> int | None:
    return None if value is None else int(value)
