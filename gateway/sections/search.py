"""The header's global search: clients (name, INN, phone), contacts (name, phone, e-mail)
and deals (name, client, number), asked of the services at once under one deadline.

``/search?q=`` answers JSON to the header's script (``Accept: application/json``) and a
page of results otherwise, so the search also works without JavaScript."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, jsonify, render_template, request, url_for

from gateway import formatting
from gateway.aggregate import Call, Panel, call
from gateway.auth import can, login_required
from gateway.i18n import extend
from gateway.remote import remote, remote_many
from services.kit.errors import Forbidden

bp = Blueprint("search", __name__)

LIMIT = 5

extend({
    "ru": {"search.placeholder": "Поиск: клиент, контакт, сделка, телефон, ИНН, e-mail",
           "search.title": "Поиск", "search.clients": "Клиенты", "search.contacts": "Контакты",
           "search.deals": "Сделки", "search.nothing": "Ничего не найдено",
           "search.label": "Глобальный поиск",
           "search.partial": "Не все разделы ответили вовремя"},
    "en": {"search.placeholder": "Search: client, contact, deal, phone, INN, e-mail",
           "search.title": "Search", "search.clients": "Clients", "search.contacts": "Contacts",
           "search.deals": "Deals", "search.nothing": "Nothing found",
           "search.label": "Global search",
           "search.partial": "Some sections did not answer in time"},
})


def search_calls(text: str, with_deals: bool) -> dict[str, Call]:
    """What to ask for ``text``: every service at once.  One deals call answers both the
    deal a number names (first) and the deals whose name or client matches."""
    calls = {"clients": call("clients", "search_clients", text, per_page=LIMIT, count=False),
             "contacts": call("clients", "find_contacts", text, limit=LIMIT)}
    if with_deals:
        calls["deals"] = call("deals", "find_deals", text, limit=LIMIT)
    return calls


def _client_line(c: dict[str, Any]) -> str:
    return " · ".join(part for part in (
        f"№{c['number']}" if c.get("number") else "", c.get("inn") or "",
        formatting.phone(c.get("phone")), c.get("email") or "") if part)


def _contact_line(c: dict[str, Any]) -> str:
    return " · ".join(part for part in (
        c.get("client_name") or "", ", ".join(formatting.phone(p) for p in c["phones"][:2]),
        ", ".join(c["emails"][:1])) if part)


def _deal_line(d: dict[str, Any]) -> str:
    status = d.get("status")
    name = status.get("name") if isinstance(status, dict) else status
    return " · ".join(part for part in (f"#{d['id']}", d.get("client_name") or "", name or "",
                                        formatting.money(d.get("amount")))
                      if part)


def result_groups(panels: dict[str, Panel]) -> list[dict[str, Any]]:
    """The answers as groups of links (clients, contacts, deals), empty groups left out."""
    def data(name: str, default: Any) -> Any:
        panel = panels.get(name)
        return panel.data if panel is not None and panel.ok else default

    clients = [{"title": c["name"], "subtitle": _client_line(c),
                "url": url_for("clients.page", client_id=c["id"])}
               for c in data("clients", {"items": []})["items"]]
    contacts = [{"title": c["name"], "subtitle": _contact_line(c),
                 "url": url_for("clients.page", client_id=c["client_id"])}
                for c in data("contacts", [])]
    deals = data("deals", {"items": []})["items"]
    deal_items = [{"title": d["name"], "subtitle": _deal_line(d),
                   "url": url_for("deals.page", deal_id=d["id"])} for d in deals[:LIMIT]]
    groups = [("clients", clients), ("contacts", contacts), ("deals", deal_items)]
    return [{"kind": kind, "items": items} for kind, items in groups if items]


def _missing(panels: dict[str, Panel]) -> list[str]:
    return [name for name, panel in panels.items() if not panel.ok]


def _pick_clients(text: str) -> list[dict[str, Any]]:
    found = remote("clients", "search_clients", text, per_page=10)["items"]
    return [{"value": c["id"], "text": " · ".join(p for p in (
        c["name"], c.get("inn") or "", formatting.phone(c.get("phone"))) if p)} for c in found]


def _pick_payments(text: str) -> list[dict[str, Any]]:
    zone = formatting.current_zone()
    return [{"value": p["id"], "text": " · ".join(str(part) for part in (
        f"№{p['id']}", p.get("deal_name") or f"#{p['deal_id']}", p.get("client_name") or "",
        formatting.format_date(p["due_date"], zone),
        formatting.money(p["outstanding"], p.get("currency"))) if part)}
        for p in remote("payments", "find_open_payments", text, limit=10)]


PICKERS = {"clients": ("clients", _pick_clients), "payments": ("payments", _pick_payments)}


@bp.route("/pick/<kind>")
@login_required
def pick(kind: str) -> Any:
    """Options of a search-as-you-type picker (``data-picker="<kind>"``): value and text."""
    if kind not in PICKERS:
        abort(404)
    needed, find = PICKERS[kind]
    if not can(needed):
        raise Forbidden(f"the {needed} section is needed to pick from it", section=needed)
    text = (request.args.get("q") or "").strip()[:200]
    return jsonify(find(text) if text else [])


@bp.route("/search")
@login_required
def index() -> Any:
    text = (request.args.get("q") or "").strip()[:200]
    groups: list[dict[str, Any]] = []
    missing: list[str] = []
    if len(text) >= 2:
        budget = float(current_app.config["CRM"].get("SEARCH_DEADLINE", 1.0))
        panels = remote_many(search_calls(text, can("deals")), budget=budget)
        groups, missing = result_groups(panels), _missing(panels)
    if request.accept_mimetypes.best == "application/json":
        return jsonify({"q": text, "groups": groups, "unavailable": missing})
    return render_template("search/index.html", q=text, groups=groups, missing=missing)
