"""API: in-app notifications, the user's notification profile, messages to clients'
contacts, and the delivery log (N1–N3)."""
from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from gateway.api import body, bp, need
from gateway.api.openapi import describe_body
from gateway.remote import remote
from services.kit.errors import Forbidden, ValidationError


def admin() -> None:
    need("")
    if "admin" not in g.user.roles:
        raise Forbidden("the delivery log is for administrators", section="deliveries")


@bp.route("/notifications")
def notifications_list() -> Any:
    need("")
    return jsonify(remote("notifications", "list_for_user", g.user.id,
                          unread_only=request.args.get("unread") == "1",
                          limit=request.args.get("limit", 50, type=int)))


@bp.route("/notifications/read", methods=["POST"])
def notifications_read() -> Any:
    """Mark notifications read: ``{"ids": [...]}``, or all of them without ids."""
    need("")
    ids = (request.get_json(silent=True) or {}).get("ids")
    return jsonify({"marked": remote("notifications", "mark_read", g.user.id, ids)})


@bp.route("/notifications/profile")
def notifications_profile() -> Any:
    """Where the signed-in user is told things, and which kinds over which channels."""
    need("")
    return jsonify(remote("notifications", "get_profile", g.user.id))


@bp.route("/notifications/profile", methods=["PUT"])
def notifications_profile_put() -> Any:
    """Change e-mail / phone / language and per-kind channels (only what is given)."""
    need("")
    data = body()
    unknown = set(data) - {"email", "phone", "lang", "preferences"}
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationError(f"{name}: not a profile field", field=name)
    contact = {k: data[k] for k in ("email", "phone", "lang") if k in data}
    # one write: contact details and preferences are saved together or not at all
    return jsonify(remote("notifications", "save_profile", g.user.id,
                          {**contact, "name": g.user.full_name} if contact else None,
                          data.get("preferences")))


describe_body("api.notifications_profile_put", {"type": "object", "properties": {
    "email": {"type": ["string", "null"]}, "phone": {"type": ["string", "null"]},
    "lang": {"enum": ["ru", "en"]},
    "preferences": {"type": "object", "additionalProperties": {
        "type": "array", "items": {"enum": ["app", "email", "telegram", "sms"]}}}}})


@bp.route("/notifications/telegram-code", methods=["POST"])
def notifications_telegram_code() -> Any:
    """A one-time code to send to the bot; the bot links this user's chat."""
    need("")
    return jsonify(remote("notifications", "telegram_link_code", g.user.id)), 201


@bp.route("/clients/<int:client_id>/messages")
def notifications_client_messages(client_id: int) -> Any:
    """Messages sent to the client's contacts, newest first, with delivery status."""
    need("clients")
    return jsonify(remote("notifications", "list_client_messages", client_id,
                          limit=request.args.get("limit", 50, type=int)))


@bp.route("/clients/<int:client_id>/messages", methods=["POST"])
def notifications_client_message_send(client_id: int) -> Any:
    """Send a contact of the client a message by e-mail, Telegram or SMS (N2)."""
    need("clients")
    data = body()
    return jsonify(remote("notifications", "send_to_contact", g.user.id, client_id,
                          data.get("contact_id"), data.get("channel"), data.get("address"),
                          data.get("subject", ""), data.get("text", ""),
                          request_id=data.get("request_id"))), 201


describe_body("api.notifications_client_message_send", {
    "type": "object", "required": ["contact_id", "channel", "address", "text"],
    "properties": {"contact_id": {"type": "integer"},
                   "channel": {"enum": ["email", "telegram", "sms"]},
                   "address": {"type": "string"}, "subject": {"type": "string"},
                   "text": {"type": "string"},
                   "request_id": {"type": "string", "description": "the same id sends once"}}})


@bp.route("/notifications/deliveries")
def notifications_deliveries() -> Any:
    """The delivery log (administrators): ``status``, ``channel``, ``user_id`` filters."""
    admin()
    args = request.args
    return jsonify(remote("notifications", "list_deliveries",
                          status=args.get("status") or None, channel=args.get("channel") or None,
                          user_id=args.get("user_id", type=int),
                          limit=args.get("limit", 100, type=int),
                          offset=args.get("offset", 0, type=int)))


@bp.route("/notifications/deliveries/<int:delivery_id>")
def notifications_delivery(delivery_id: int) -> Any:
    """One delivery with every attempt (when, result, reason)."""
    admin()
    return jsonify(remote("notifications", "get_delivery", delivery_id))


@bp.route("/notifications/deliveries/<int:delivery_id>/retry", methods=["POST"])
def notifications_delivery_retry(delivery_id: int) -> Any:
    """Send a failed delivery again (a new round of tries)."""
    admin()
    return jsonify(remote("notifications", "retry_delivery", delivery_id,
                          user_id=g.user.id)), 201
