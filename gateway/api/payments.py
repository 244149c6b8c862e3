"""API: payment plans and receipts, overdue payments, the cash-flow forecast, statement
imports, own accounts, the review queue, and the online payment provider's webhook."""
from __future__ import annotations

import io
from datetime import date
from typing import Any

from flask import g, jsonify, request, send_file

from gateway.api import body, bp, need
from gateway.api.openapi import MONEY, describe_body, public
from gateway.remote import remote, user_names
from gateway.sections.payments import (
    forecast_query,
    forecast_xlsx,
    need_finance,
    queue_statement,
    uploaded_file,
)
from services.kit.errors import ValidationError

DATE = {"type": "string", "format": "date"}
REASON = {"type": "string", "minLength": 1}


# --- payment plans -----------------------------------------------------------------------


@bp.route("/deals/<int:deal_id>/payments")
def payments_of_deal(deal_id: int) -> Any:
    """The deal's plan, receipts, corrections and totals"""
    need("payments")
    return jsonify(remote("payments", "deal_payments", deal_id))


@bp.route("/deals/<int:deal_id>/payments", methods=["POST"])
def payments_add(deal_id: int) -> Any:
    """Plan a payment of the deal"""
    need("payments")
    return jsonify(remote("payments", "add_planned_payment", deal_id, body(),
                          user_id=g.user.id)), 201


@bp.route("/payments/<int:payment_id>", methods=["PATCH"])
def payments_update(payment_id: int) -> Any:
    """Change a planned payment's amount, comment or document numbers"""
    need("payments")
    return jsonify(remote("payments", "update_planned_payment", payment_id, body(),
                          user_id=g.user.id))


@bp.route("/payments/<int:payment_id>/cancel", methods=["POST"])
def payments_cancel(payment_id: int) -> Any:
    """Cancel a planned payment (nothing received against it)"""
    need("payments")
    return jsonify(remote("payments", "cancel_planned_payment", payment_id, body(),
                          user_id=g.user.id))


@bp.route("/payments/<int:payment_id>/due-date", methods=["POST"])
def payments_move(payment_id: int) -> Any:
    """Move a due date, with the reason"""
    need("payments")
    return jsonify(remote("payments", "move_due_date", payment_id, body(), user_id=g.user.id))


@bp.route("/payments/<int:payment_id>/receipts", methods=["POST"])
def payments_receive(payment_id: int) -> Any:
    """Record money received against a planned payment"""
    need("payments")
    return jsonify(remote("payments", "mark_received", payment_id, body(),
                          user_id=g.user.id)), 201


@bp.route("/payments/receipts/<int:receipt_id>/correction", methods=["POST"])
def payments_correct_receipt(receipt_id: int) -> Any:
    """Correct a manual receipt's amount or date (accountant)"""
    need("payments")
    need_finance()
    return jsonify(remote("payments", "correct_receipt", receipt_id, body(),
                          user_id=g.user.id))


@bp.route("/payments/receipts/<int:receipt_id>/cancel", methods=["POST"])
def payments_cancel_receipt(receipt_id: int) -> Any:
    """Cancel a receipt (accountant); bank money goes back to the review queue"""
    need("payments")
    need_finance()
    return jsonify(remote("payments", "cancel_receipt", receipt_id, body(),
                          user_id=g.user.id))


# --- overdue and forecast ------------------------------------------------------------------


@bp.route("/payments/overdue")
def payments_overdue() -> Any:
    """Overdue planned payments, oldest first (accountant, head of sales)"""
    need("payments")
    need_finance()
    query = {k: request.args.get(k) for k in ("manager_id", "page", "per_page")
             if request.args.get(k)}
    return jsonify(remote("payments", "overdue_payments", query))


@bp.route("/payments/overdue-by-deal")
def payments_overdue_by_deal() -> Any:
    """Overdue count and amount per deal: ?deal_ids=1,2,3"""
    need("payments")
    raw = request.args.get("deal_ids", "")
    try:
        ids = [int(i) for i in raw.split(",") if i.strip()]
    except ValueError:
        raise ValidationError("deal_ids: comma-separated deal ids", field="deal_ids") from None
    return jsonify(remote("payments", "overdue_by_deal", ids))


@bp.route("/payments/forecast")
def payments_forecast() -> Any:
    """Expected receipts per period, overall and per manager; ?format=xlsx for a workbook"""
    need("payments")
    data = remote("payments", "forecast", forecast_query(request.args))
    if request.args.get("format") == "xlsx":
        content = forecast_xlsx(data, user_names(), g.t)
        return send_file(io.BytesIO(content), as_attachment=True,
                         download_name=f"forecast-{date.today().isoformat()}.xlsx",
                         mimetype="application/vnd.openxmlformats-officedocument."
                                  "spreadsheetml.sheet")
    return jsonify(data)


# --- statements ----------------------------------------------------------------------------


@bp.route("/payments/imports", methods=["POST"])
def payments_upload() -> Any:
    """Upload a statement (multipart `file`, or the raw file as the body with
    ?filename=); answers 202 at once with the import job to poll"""
    need("payments")
    need_finance()
    if request.files:
        upload = uploaded_file()
        job = queue_statement(upload.stream, upload.filename or "statement")
    else:
        job = queue_statement(request.stream, request.args.get("filename") or "statement")
    return jsonify(job), 202


@bp.route("/payments/imports")
def payments_imports() -> Any:
    """Import jobs, newest first"""
    need("payments")
    need_finance()
    return jsonify(remote("payments", "list_imports", {"page": request.args.get("page") or 1}))


@bp.route("/payments/imports/<int:job_id>")
def payments_import(job_id: int) -> Any:
    """One import: status, progress, counts, or the error with its line/element"""
    need("payments")
    need_finance()
    return jsonify(remote("payments", "get_import", job_id))


@bp.route("/payments/imports/<int:job_id>/transactions")
def payments_import_transactions(job_id: int) -> Any:
    """Transactions of one import; ?status=matched|review|unmatched|foreign_account|..."""
    need("payments")
    need_finance()
    query = {k: request.args.get(k) for k in ("status", "page", "per_page")
             if request.args.get(k)}
    return jsonify(remote("payments", "import_transactions", job_id, query))


@bp.route("/payments/accounts")
def payments_accounts() -> Any:
    """Our own bank accounts (only credits to them are matched)"""
    need("payments")
    need_finance()
    return jsonify(remote("payments", "list_own_accounts"))


@bp.route("/payments/accounts", methods=["POST"])
def payments_add_account() -> Any:
    """Add an own account; its already imported credits are matched in the background"""
    need("payments")
    need_finance()
    return jsonify(remote("payments", "add_own_account", body(), user_id=g.user.id)), 201


@bp.route("/payments/accounts/<account>", methods=["DELETE"])
def payments_remove_account(account: str) -> Any:
    """Remove an own account"""
    need("payments")
    need_finance()
    return jsonify(remote("payments", "remove_own_account", account, user_id=g.user.id))


@bp.route("/payments/review")
def payments_review() -> Any:
    """Transactions waiting for a person (?status=review|unmatched)"""
    need("payments")
    need_finance()
    query = {k: request.args.get(k) for k in ("status", "page", "per_page")
             if request.args.get(k)}
    return jsonify(remote("payments", "review_queue", query))


@bp.route("/payments/transactions/<int:transaction_id>/resolve", methods=["POST"])
def payments_resolve(transaction_id: int) -> Any:
    """Confirm a match, pick another payment, split the amount, or dismiss"""
    need("payments")
    need_finance()
    return jsonify(remote("payments", "resolve_transaction", transaction_id, body(),
                          user_id=g.user.id))


# --- online payment ------------------------------------------------------------------------


@bp.route("/payments/webhooks/yookassa", methods=["POST"])
def payments_webhook() -> Any:
    """The payment provider's notification (YooKassa payment.succeeded), checked with the
    provider's API before anything is recorded; a repeated notification changes nothing"""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError("the notification must be a JSON object", field="body")
    return jsonify(remote("payments", "online_payment_notification", data))


public("api.payments_webhook")

describe_body("api.payments_add", {"type": "object", "required": ["amount", "due_date"],
                                   "properties": {
                                       "amount": MONEY, "due_date": DATE,
                                       "currency": {"type": "string"},
                                       "comment": {"type": "string"},
                                       "invoice_number": {"type": "string"},
                                       "contract_number": {"type": "string"}}})
describe_body("api.payments_update", {"type": "object", "properties": {
    "amount": MONEY, "comment": {"type": "string"}, "invoice_number": {"type": "string"},
    "contract_number": {"type": "string"}, "version": {"type": "integer"}}})
describe_body("api.payments_cancel", {"type": "object", "required": ["reason"],
                                      "properties": {"reason": REASON}})
describe_body("api.payments_move", {"type": "object", "required": ["due_date", "reason"],
                                    "properties": {"due_date": DATE, "reason": REASON}})
describe_body("api.payments_receive", {"type": "object", "properties": {
    "amount": MONEY, "received_on": DATE, "comment": {"type": "string"}}})
describe_body("api.payments_correct_receipt", {"type": "object", "required": ["reason"],
                                               "properties": {"amount": MONEY,
                                                              "received_on": DATE,
                                                              "reason": REASON}})
describe_body("api.payments_cancel_receipt", {"type": "object", "required": ["reason"],
                                              "properties": {"reason": REASON}})
describe_body("api.payments_add_account", {"type": "object", "required": ["account"],
                                           "properties": {"account": {"type": "string"},
                                                          "name": {"type": "string"}}})
describe_body("api.payments_resolve", {"type": "object", "required": ["action"], "properties": {
    "action": {"enum": ["confirm", "split", "dismiss"]}, "payment_id": {"type": "integer"},
    "allocations": {"type": "array", "items": {
        "type": "object", "required": ["payment_id", "amount"],
        "properties": {"payment_id": {"type": "integer"}, "amount": MONEY}}},
    "note": {"type": "string"}}})
describe_body("api.payments_upload", {"type": "object", "properties": {
    "file": {"type": "string", "format": "binary"}}})
describe_body("api.payments_webhook", {"type": "object", "required": ["type", "event", "object"],
                                       "properties": {
                                           "type": {"const": "notification"},
                                           "event": {"type": "string"},
                                           "object": {"type": "object", "required": ["id"]}}})
