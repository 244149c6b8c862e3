"""The deal page's data, gathered from every service at once (used by HTML and API)."""
from __future__ import annotations

import time
from typing import Any

from flask import current_app, g

from gateway.aggregate import Panel, call, collect, send
from gateway.feed import merge_feed
from gateway.remote import rpc

PANELS = ("deal", "client", "payments", "calls", "notifications", "documents")


def load_deal_page(deal_id: int, user_id: int) -> dict[str, Panel]:
    """All panels of one deal under one deadline.

    deals (``deal_page``: the deal with its contacts, feed, reminders, orders, calculation,
    environment and history), payments, telephony and notifications are asked at once; the
    client's id comes from the deal, so clients is asked the moment deals answers, within
    the same deadline.
    """
    budget = float(current_app.config["CRM"].get("PAGE_DEADLINE", 2.0))
    deadline = time.monotonic() + budget
    call_id = f"gateway.{g.request_id}"
    sent = send(rpc(), {
        "deal": call("deals", "deal_page", deal_id),
        "payments": call("payments", "deal_payments", deal_id),
        "calls": call("telephony", "list_calls", deal_id=deal_id),
        "notifications": call("notifications", "list_for_user", user_id, unread_only=True,
                              limit=10),
        "documents": call("documents", "deal_documents", deal_id),
    }, call_id, timeout=budget)
    panels = collect({"deal": sent.pop("deal")}, deadline)
    deal = panels["deal"]
    if deal.ok:
        sent["client"] = send(rpc(), {"client": call("clients", "get_client",
                                                     deal.data["client_id"])},
                              call_id, timeout=budget)["client"]
    panels.update(collect(sent, deadline))
    if "client" not in panels:
        panels["client"] = Panel(error=deal.error)
    return panels


def feed_of(panels: dict[str, Panel]) -> list[dict[str, Any]]:
    calls = panels["calls"].data if panels["calls"].ok else []
    receipts = panels["payments"].data["receipts"] if panels["payments"].ok else []
    entries = panels["deal"].data.get("feed", []) if panels["deal"].ok else []
    return merge_feed(calls, receipts, entries)


def page_json(panels: dict[str, Panel]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name in PANELS:
        panel = panels[name]
        body[name] = panel.data if panel.ok else None
    body["unavailable"] = {name: panels[name].error.to_dict() for name in PANELS  # type: ignore[union-attr]
                           if not panels[name].ok}
    body["feed"] = feed_of(panels)
    return body
