"""The deal page's data, gathered from every service at once (used by HTML and API)."""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from flask import current_app, g

from gateway.aggregate import Panel, call, collect, send, unavailable
from gateway.feed import merge_feed
from gateway.reference import reference_lists
from gateway.remote import rpc
from gateway.rpc import Reply
from services.kit.errors import CrmError, NotFound

PANELS = ("deal", "client", "payments", "calls", "notifications", "documents", "probability")
MAX_ID = 2**63 - 1  # ids are BIGINT: a larger one names nothing
# the client each deal was last shown with, so that the client is asked together with the
# deal instead of after it (one round trip less on a page); a deal's client seldom
# changes, and when deals names another, that one is asked then, as without a guess
_CLIENT_OF: dict[int, int] = {}
_CLIENTS_KEPT = 50_000


def load_deal_page(deal_id: int, user_id: int) -> dict[str, Panel]:
    """All panels of one deal under one deadline.

    deals (``deal_page``: the deal with its contacts, feed, reminders, orders, calculation,
    environment and history), payments, telephony and notifications are asked at once; the
    client's id comes from the deal, so clients is asked the moment deals answers, within
    the same deadline.  The reference lists come from the gateway's cache unless deals says
    they changed (gateway/reference.py).  A deal that does not exist (or an id deals
    refuses) is the page's answer, raised; only a late or absent service leaves panels
    unavailable.
    """
    if deal_id > MAX_ID:
        raise NotFound(f"deal {deal_id} not found", deal_id=deal_id)
    budget = float(current_app.config["CRM"].get("PAGE_DEADLINE", 2.0))
    deadline = time.monotonic() + budget
    call_id = f"gateway.{g.request_id}"
    lists = reference_lists()
    calls = {
        "deal": call("deals", "deal_page", deal_id, reference_revision=lists.latest()),
        "payments": call("payments", "deal_payments", deal_id),
        "calls": call("telephony", "list_calls", deal_id=deal_id),
        "notifications": call("notifications", "list_for_user", user_id, unread_only=True,
                              limit=10, deal_id=deal_id),
        "documents": call("documents", "deal_documents", deal_id),
        "probability": call("analytics", "win_probability", deal_id),
    }
    guessed = _CLIENT_OF.get(deal_id)
    if guessed is not None:
        calls["client"] = call("clients", "get_client", guessed)
    sent = send(rpc(), calls, call_id, timeout=budget)
    deal = _deal_panel(sent, deadline)
    if deal.ok and not lists.complete(deal.data):
        # the revision we sent was replaced meanwhile: once more, with the lists
        deal = _deal_panel(send(rpc(), {"deal": call("deals", "deal_page", deal_id)},
                                call_id, timeout=budget), deadline)
        if deal.ok:
            lists.complete(deal.data)
    panels = {"deal": deal}
    guess = sent.pop("client", None)  # an unused guess's late reply is dropped
    if deal.ok:
        deal.data.pop("reference_revision", None)  # the cache's business, not the page's
        client_id = deal.data["client_id"]
        sent["client"] = guess if guess is not None and guessed == client_id else send(
            rpc(), {"client": call("clients", "get_client", client_id)},
            call_id, timeout=budget)["client"]
        _remember_client(deal_id, client_id)
    panels.update(collect(sent, deadline))
    notes = panels["notifications"]
    if notes.ok and isinstance(notes.data, dict) and "unread" in notes.data:
        g.unread = notes.data["unread"]  # the header's bell: no second RPC for the count
    if "client" not in panels:
        panels["client"] = Panel(error=deal.error)
    return panels


def _remember_client(deal_id: int, client_id: Any) -> None:
    if not isinstance(client_id, int):
        return
    if len(_CLIENT_OF) >= _CLIENTS_KEPT and deal_id not in _CLIENT_OF:
        _CLIENT_OF.clear()  # many deals viewed since: start afresh rather than track age
    _CLIENT_OF[deal_id] = client_id


def _deal_panel(sent: dict[str, Reply | CrmError], deadline: float) -> Panel:
    """The deals answer (taken out of ``sent``); a refusal is the page's answer, raised."""
    deal = collect({"deal": sent.pop("deal")}, deadline)["deal"]
    if not deal.ok and not unavailable(deal):
        raise deal.error  # type: ignore[misc]
    return deal


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


def budget_summary(deal: dict[str, Any]) -> dict[str, Any]:
    """The deal's money as one concept: the expected amount (the calculator's total, or
    typed in), the budget (the payment plan's sum, once there is a plan), paid and
    outstanding; ``amount`` is the one figure the card shows (the budget once there is a
    plan, else the expected amount); ``gap`` is expected minus budget when they disagree."""
    calc = deal.get("calculation") or None
    expected = Decimal(str(deal.get("expected_amount") or "0"))
    has_plan = bool(deal.get("has_plan"))
    budget = Decimal(str(deal.get("budget") or "0")) if has_plan else None
    source = "calculation" if calc and Decimal(str(calc["total"])) == expected else (
        "typed" if expected else None)
    gap = expected - budget if budget is not None and expected and expected != budget else None
    return {"expected": expected, "source": source, "budget": budget,
            "paid": deal.get("paid") if has_plan else None,
            "outstanding": deal.get("outstanding") if has_plan else None,
            "amount": budget if budget is not None else expected,
            "gap": gap, "currency": deal.get("currency") or "RUB"}
