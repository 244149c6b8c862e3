"""Webhooks of cloud PBXs (T1): Mango Office and Zadarma.  Public (no token): the PBX
signs each request and the telephony service checks the signature with its secrets; the
gateway only forwards what arrived.  A refused signature answers 403, a malformed
payload 422; a repeat answers 200 and changes nothing."""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from gateway.api import bp
from gateway.api.openapi import public
from gateway.auth import client_address
from gateway.remote import remote


@bp.route("/webhooks/mango/<path:event>", methods=["POST"])
def webhooks_mango(event: str) -> Any:
    """Mango Office VPBX realtime events: events/call, events/summary, events/record/added
    (form fields vpbx_api_key, sign, json)."""
    result = remote("telephony", "mango_webhook", event, request.form.to_dict(),
                    remote_addr=client_address())
    return jsonify(result), 200


@bp.route("/webhooks/zadarma", methods=["GET", "POST"])
def webhooks_zadarma() -> Any:
    """Zadarma notifications (NOTIFY_START, NOTIFY_END, NOTIFY_OUT_START, NOTIFY_OUT_END,
    NOTIFY_RECORD; Signature header); GET ?zd_echo=X answers X (the URL check)."""
    echo = request.args.get("zd_echo")
    if echo is not None:
        return Response(echo[:200], mimetype="text/plain")
    if request.method == "GET":
        return jsonify({"status": "ok"}), 200
    result = remote("telephony", "zadarma_webhook", request.form.to_dict(),
                    request.headers.get("Signature"), remote_addr=client_address())
    return jsonify(result), 200


public("api.webhooks_mango")
public("api.webhooks_zadarma")
