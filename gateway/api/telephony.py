"""API: calls (T1–T4)."""
from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from gateway.api import body, bp, need
from gateway.api.openapi import describe_body
from gateway.remote import remote
from gateway.sections.telephony import create_client_from_call
from services.kit.errors import Forbidden


@bp.route("/calls", methods=["POST"])
def calls_record() -> Any:
    """Report a finished call (a PBX without webhooks, a softphone, an import)."""
    need("deals")
    return jsonify(remote("telephony", "record_call", body())), 201


@bp.route("/calls")
def calls_list() -> Any:
    """Calls, newest first: by deal, client or contact; ``unknown=1`` for unmatched ones."""
    need("deals")
    args = request.args
    return jsonify(remote("telephony", "list_calls", deal_id=args.get("deal_id", type=int),
                          client_id=args.get("client_id", type=int),
                          contact_id=args.get("contact_id", type=int),
                          unknown=args.get("unknown") == "1",
                          include_live=args.get("live") == "1",
                          limit=args.get("limit", 100, type=int),
                          offset=args.get("offset", 0, type=int)))


@bp.route("/calls/<int:call_id>")
def calls_get(call_id: int) -> Any:
    """One call; ``recording_url`` plays it (with Range) once it is stored."""
    need("deals")
    return jsonify(remote("telephony", "get_call", call_id))


@bp.route("/calls/<int:call_id>/client", methods=["POST"])
def calls_create_client(call_id: int) -> Any:
    """A client (private person), its contact with the caller's number and a deal, from an
    unknown caller's call; the call and the number's other calls are attached (T4)."""
    need("deals")
    data = request.get_json(silent=True) or {}
    if not isinstance(data, dict):
        data = {}
    return jsonify(create_client_from_call(call_id, data, g.user.id, g.lang)), 201


describe_body("api.calls_create_client", {"type": "object", "properties": {
    "client_name": {"type": "string"}, "contact_name": {"type": "string"},
    "deal_name": {"type": "string"}}})


@bp.route("/calls/<int:call_id>/recording/retry", methods=["POST"])
def calls_recording_retry(call_id: int) -> Any:
    """Fetch a call's recording from the PBX again (after it failed)."""
    need("deals")
    return jsonify(remote("telephony", "retry_recording", call_id)), 201


@bp.route("/telephony/webhooks")
def telephony_webhooks() -> Any:
    """The PBX webhook log (accepted, ignored, refused, invalid), for administrators."""
    need("")
    if "admin" not in g.user.roles:
        raise Forbidden("the webhook log is for administrators", section="telephony")
    return jsonify(remote("telephony", "list_webhooks",
                          outcome=request.args.get("outcome") or None,
                          limit=request.args.get("limit", 100, type=int)))
