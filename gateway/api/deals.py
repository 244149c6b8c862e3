"""API: deals, statuses and the aggregated deal page."""
from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from gateway.api import body, bp, need
from gateway.deal_page import load_deal_page, page_json
from gateway.remote import remote


@bp.route("/statuses")
def statuses() -> Any:
    need("deals")
    return jsonify(remote("deals", "list_statuses"))


@bp.route("/deals")
def deals_list() -> Any:
    need("deals")
    manager = request.args.get("manager_id", type=int)
    if request.args.get("mine") == "1":
        manager = g.user.id
    return jsonify(remote("deals", "list_deals", manager_id=manager,
                          status=request.args.get("status"),
                          client_id=request.args.get("client_id", type=int)))


@bp.route("/deals", methods=["POST"])
def deals_create() -> Any:
    need("deals")
    return jsonify(remote("deals", "create_deal", body(), user_id=g.user.id)), 201


@bp.route("/deals/<int:deal_id>")
def deals_page(deal_id: int) -> Any:
    """The aggregated deal page; panels of services that did not answer are null and listed
    under ``unavailable``."""
    need("deals")
    panels = load_deal_page(deal_id, g.user.id)
    if not panels["deal"].ok and panels["deal"].error.http_status == 404:  # type: ignore[union-attr]
        raise panels["deal"].error  # type: ignore[misc]
    return jsonify(page_json(panels))


@bp.route("/deals/<int:deal_id>/status", methods=["POST"])
def deals_status(deal_id: int) -> Any:
    need("deals")
    data = body()
    return jsonify(remote("deals", "change_status", deal_id, data.get("status", ""),
                          user_id=g.user.id, version=data.get("version")))
