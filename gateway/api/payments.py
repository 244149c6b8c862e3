"""API: payment plans and receipts."""
from __future__ import annotations

from typing import Any

from flask import g, jsonify

from gateway.api import body, bp, need
from gateway.remote import remote


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
