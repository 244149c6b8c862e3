"""API: clients and contacts."""
from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from gateway.api import body, bp, need
from gateway.remote import remote


@bp.route("/clients")
def clients_search() -> Any:
    need("clients")
    return jsonify(remote("clients", "search_clients", request.args.get("q", ""),
                          page=request.args.get("page", 1, type=int),
                          per_page=min(request.args.get("per_page", 50, type=int), 200)))


@bp.route("/clients", methods=["POST"])
def clients_create() -> Any:
    need("clients")
    return jsonify(remote("clients", "create_client", body(), user_id=g.user.id,
                          lang=g.lang)), 201


@bp.route("/clients/<int:client_id>")
def clients_get(client_id: int) -> Any:
    need("clients")
    return jsonify(remote("clients", "get_client", client_id))


@bp.route("/clients/<int:client_id>/contacts", methods=["POST"])
def clients_add_contact(client_id: int) -> Any:
    need("clients")
    return jsonify(remote("clients", "add_contact", client_id, body(), user_id=g.user.id)), 201
