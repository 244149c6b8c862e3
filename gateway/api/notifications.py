"""API: in-app notifications."""
from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from gateway.api import bp, need
from gateway.remote import remote


@bp.route("/notifications")
def notifications_list() -> Any:
    need("")
    return jsonify(remote("notifications", "list_for_user", g.user.id,
                          unread_only=request.args.get("unread") == "1"))


@bp.route("/notifications/read", methods=["POST"])
def notifications_read() -> Any:
    need("")
    ids = (request.get_json(silent=True) or {}).get("ids")
    return jsonify({"marked": remote("notifications", "mark_read", g.user.id, ids)})
