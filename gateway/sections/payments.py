"""Payments section: payment plans on the deal page (P1), more to come (P3, P4)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, request, url_for

from gateway.auth import section
from gateway.remote import remote
from gateway.sections.deals import back
from services.kit.errors import CrmError

bp = Blueprint("payments", __name__)


@bp.route("/deals/<int:deal_id>/payments", methods=["POST"])
@section("payments")
def add(deal_id: int) -> Any:
    try:
        remote("payments", "add_planned_payment", deal_id,
               {"amount": request.form.get("amount"), "due_date": request.form.get("due_date"),
                "comment": request.form.get("comment")}, user_id=g.user.id)
    except CrmError as exc:
        return back("deals.page", exc, deal_id=deal_id)
    return redirect(url_for("deals.page", deal_id=deal_id))


@bp.route("/deals/<int:deal_id>/payments/<int:payment_id>/receive", methods=["POST"])
@section("payments")
def receive(deal_id: int, payment_id: int) -> Any:
    try:
        remote("payments", "mark_received", payment_id,
               {"amount": request.form.get("amount"),
                "received_on": request.form.get("received_on")}, user_id=g.user.id)
    except CrmError as exc:
        return back("deals.page", exc, deal_id=deal_id)
    return redirect(url_for("deals.page", deal_id=deal_id))
