"""API: calls."""
from __future__ import annotations

from typing import Any

from flask import jsonify, request

from gateway.api import body, bp, need
from gateway.remote import remote


@bp.route("/calls", methods=["POST"])
def calls_record() -> Any:
    need("deals")
    return jsonify(remote("telephony", "record_call", body())), 201


@bp.route("/calls")
def calls_list() -> Any:
    need("deals")
    return jsonify(remote("telephony", "list_calls", deal_id=request.args.get("deal_id", type=int),
                          client_id=request.args.get("client_id", type=int)))
