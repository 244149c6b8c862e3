"""Clients section pages (C1–C9)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, render_template, request, url_for

from gateway.aggregate import call
from gateway.auth import section
from gateway.remote import remote, remote_many, user_names
from gateway.sections.deals import back
from services.kit.errors import CrmError

bp = Blueprint("clients", __name__)


@bp.route("/clients")
@section("clients")
def index() -> Any:
    query = request.args.get("q", "")
    page = max(1, request.args.get("page", 1, type=int) or 1)
    result = remote("clients", "search_clients", query, page=page)
    return render_template("clients/index.html", result=result, query=query,
                           managers=user_names(), error=request.args.get("error"))


@bp.route("/clients", methods=["POST"])
@section("clients")
def create() -> Any:
    data = {k: request.form.get(k) for k in ("name", "inn", "kind", "address", "website")}
    data = {k: v for k, v in data.items() if v}
    try:
        client = remote("clients", "create_client", data, user_id=g.user.id, lang=g.lang)
    except CrmError as exc:
        return back("clients.index", exc)
    return redirect(url_for("clients.page", client_id=client["id"]))


@bp.route("/clients/<int:client_id>")
@section("clients")
def page(client_id: int) -> Any:
    panels = remote_many({"client": call("clients", "get_client", client_id),
                          "deals": call("deals", "list_deals", client_id=client_id)})
    if not panels["client"].ok:
        raise panels["client"].error  # type: ignore[misc]
    return render_template("clients/page.html", client=panels["client"].data,
                           deals=panels["deals"], managers=user_names(),
                           error=request.args.get("error"))


@bp.route("/clients/<int:client_id>/contacts", methods=["POST"])
@section("clients")
def add_contact(client_id: int) -> Any:
    data = {"name": request.form.get("name"), "position": request.form.get("position") or None,
            "phones": [request.form.get("phone")] if request.form.get("phone") else []}
    try:
        remote("clients", "add_contact", client_id, data, user_id=g.user.id)
    except CrmError as exc:
        return back("clients.page", exc, client_id=client_id)
    return redirect(url_for("clients.page", client_id=client_id))
