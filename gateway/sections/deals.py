"""Deals section pages (D1–D12)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, render_template, request, url_for

from gateway.aggregate import call
from gateway.auth import section
from gateway.deal_page import feed_of, load_deal_page
from gateway.remote import remote, remote_many, user_names
from services.kit.errors import CrmError

bp = Blueprint("deals", __name__)


def back(endpoint: str, error: CrmError | None = None, **values: Any) -> Any:
    """After a form post: back to the page, with the error shown if there was one."""
    if error is not None:
        values["error"] = error.message
    return redirect(url_for(endpoint, **values))


@bp.route("/")
def root() -> Any:
    return redirect(url_for("deals.index"))


@bp.route("/deals")
@section("deals")
def index() -> Any:
    mine = request.args.get("all") != "1"
    panels = remote_many({
        "deals": call("deals", "list_deals", manager_id=g.user.id if mine else None),
        "statuses": call("deals", "list_statuses"),
        "clients": call("clients", "search_clients", "", per_page=200),
    })
    for panel in panels.values():
        if not panel.ok:
            raise panel.error  # type: ignore[misc]
    clients = {c["id"]: c["name"] for c in panels["clients"].data["items"]}
    return render_template("deals/index.html", deals=panels["deals"].data,
                           statuses=panels["statuses"].data, clients=clients, mine=mine,
                           managers=user_names(), error=request.args.get("error"))


@bp.route("/deals", methods=["POST"])
@section("deals")
def create() -> Any:
    try:
        deal = remote("deals", "create_deal", {"name": request.form.get("name"),
                                               "client_id": request.form.get("client_id")},
                      user_id=g.user.id)
    except CrmError as exc:
        return back("deals.index", exc)
    return redirect(url_for("deals.page", deal_id=deal["id"]))


@bp.route("/deals/<int:deal_id>")
@section("deals")
def page(deal_id: int) -> Any:
    panels = load_deal_page(deal_id, g.user.id)
    deal = panels["deal"]
    if not deal.ok and deal.error.http_status == 404:  # type: ignore[union-attr]
        raise deal.error  # type: ignore[misc]
    statuses = []
    if deal.ok:
        try:
            statuses = remote("deals", "list_statuses")
        except CrmError:
            statuses = [deal.data["status"]]
    return render_template("deals/page.html", deal_id=deal_id, panels=panels,
                           feed=feed_of(panels), statuses=statuses, managers=user_names(),
                           error=request.args.get("error"))


@bp.route("/deals/<int:deal_id>/status", methods=["POST"])
@section("deals")
def change_status(deal_id: int) -> Any:
    version = request.form.get("version")
    try:
        remote("deals", "change_status", deal_id, request.form.get("status", ""),
               user_id=g.user.id, version=int(version) if version else None)
    except CrmError as exc:
        return back("deals.page", exc, deal_id=deal_id)
    return redirect(url_for("deals.page", deal_id=deal_id))
