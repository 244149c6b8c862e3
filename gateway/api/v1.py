"""The JSON REST API under /api/v1 (OpenAPI document at /api/v1/openapi.json).

It calls the same services as the HTML pages; errors are JSON ``{"error": {code, message,
field?}}`` with 401/403/404/409/422/503/504."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify, request

from gateway import auth
from gateway.api.openapi import document
from gateway.deal_page import load_deal_page, page_json
from gateway.remote import remote
from services.kit.errors import ValidationError

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError("the request body must be a JSON object", field="body")
    return data


def need(name: str) -> None:
    if g.user is None:
        from flask import abort

        abort(401, description="sign in first: POST /api/v1/auth/token, then send "
                               "'Authorization: Bearer <token>'")
    if name and not set(g.user.roles) & auth.SECTION_ROLES[name]:
        from services.kit.errors import Forbidden

        raise Forbidden(f"the {name} section needs one of the roles "
                        f"{', '.join(sorted(auth.SECTION_ROLES[name]))}", section=name)


@bp.route("/openapi.json")
def openapi() -> Any:
    return jsonify(document())


@bp.route("/auth/token", methods=["POST"])
def token() -> Any:
    data = body()
    for field in ("username", "password"):
        if not isinstance(data.get(field), str) or not data[field]:
            raise ValidationError(f"{field}: required", field=field)
    try:
        user = auth.authenticate(g.db, data["username"], data["password"], auth.client_address(),
                                 current_app.config["CRM"])
    except auth.TooManyAttempts as exc:
        return jsonify({"error": {"code": "too_many_attempts",
                                  "message": f"too many failed sign-ins; try again in "
                                             f"{exc.minutes} min"}}), 429
    if user is None:
        return jsonify({"error": {"code": "bad_credentials",
                                  "message": "wrong username or password"}}), 401
    value, expires = auth.issue_api_token(g.db, user)
    g.db.commit()
    return jsonify({"token": value, "token_type": "Bearer", "expires_at": expires.isoformat(),
                    "user": {"id": user.id, "username": user.username, "roles": user.roles}})


@bp.route("/me")
def me() -> Any:
    need("")
    u = g.user
    return jsonify({"id": u.id, "username": u.username, "full_name": u.full_name,
                    "roles": u.roles, "lang": u.lang})


# -- clients -------------------------------------------------------------------------------
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


# -- deals ---------------------------------------------------------------------------------
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


# -- payments ------------------------------------------------------------------------------
@bp.route("/deals/<int:deal_id>/payments")
def payments_of_deal(deal_id: int) -> Any:
    need("payments")
    return jsonify(remote("payments", "deal_payments", deal_id))


@bp.route("/deals/<int:deal_id>/payments", methods=["POST"])
def payments_add(deal_id: int) -> Any:
    need("payments")
    return jsonify(remote("payments", "add_planned_payment", deal_id, body(),
                          user_id=g.user.id)), 201


@bp.route("/payments/<int:payment_id>/receipts", methods=["POST"])
def payments_receive(payment_id: int) -> Any:
    need("payments")
    return jsonify(remote("payments", "mark_received", payment_id, body(),
                          user_id=g.user.id)), 201


# -- telephony -----------------------------------------------------------------------------
@bp.route("/calls", methods=["POST"])
def calls_record() -> Any:
    need("deals")
    return jsonify(remote("telephony", "record_call", body())), 201


@bp.route("/calls")
def calls_list() -> Any:
    need("deals")
    return jsonify(remote("telephony", "list_calls", deal_id=request.args.get("deal_id", type=int),
                          client_id=request.args.get("client_id", type=int)))


# -- notifications -------------------------------------------------------------------------
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
