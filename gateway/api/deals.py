"""API: deals and their board, the aggregated deal page, and everything on it (contacts,
comments with files, reminders, orders, calculator, environment, history)."""
from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from gateway.api import body, bp, need
from gateway.api.openapi import describe_body
from gateway.deal_page import load_deal_page, page_json
from gateway.remote import remote
from gateway.sections.deals import add_comment_with_files, board_filter, send_attachment

LINES = {"type": "array", "items": {"type": "object", "required": ["name", "unit_price"],
                                    "properties": {
                                        "kind": {"enum": ["goods", "service"]},
                                        "name": {"type": "string"},
                                        "quantity": {"type": "string"},
                                        "unit_price": {"type": "string"},
                                        "discount": {"type": "string"}}}}


@bp.route("/statuses")
def statuses() -> Any:
    need("deals")
    return jsonify(remote("deals", "list_statuses"))


@bp.route("/deal-types")
def deal_types() -> Any:
    need("deals")
    return jsonify(remote("deals", "list_deal_types"))


@bp.route("/loss-reasons")
def loss_reasons() -> Any:
    need("deals")
    return jsonify(remote("deals", "list_loss_reasons"))


@bp.route("/deals")
def deals_list() -> Any:
    """Deals, newest first.  Without ``after``/filters beyond these, the old list; with
    ``page=1`` (or ``after``) a keyset page ``{items, next_after}`` of the board's filter."""
    need("deals")
    if "after" in request.args or request.args.get("page"):
        return jsonify(remote("deals", "search_deals", board_filter(request.args, g.user),
                              after=request.args.get("after", type=int),
                              limit=request.args.get("limit", 50, type=int)))
    manager = request.args.get("manager_id", type=int)
    if request.args.get("mine") == "1":
        manager = g.user.id
    return jsonify(remote("deals", "list_deals", manager_id=manager,
                          status=request.args.get("status"),
                          client_id=request.args.get("client_id", type=int)))


@bp.route("/deals/board")
def deals_board() -> Any:
    """The kanban: every status with its count, total amount and first page of cards.
    Filters as on the page (``manager=all`` removes the default "my deals")."""
    need("deals")
    return jsonify(remote("deals", "board", board_filter(request.args, g.user),
                          per_column=request.args.get("per_column", 20, type=int)))


@bp.route("/deals/board/<status>")
def deals_board_column(status: str) -> Any:
    """The next page of one column (``after``: the last card's id)."""
    need("deals")
    return jsonify(remote("deals", "board_column", status, board_filter(request.args, g.user),
                          after=request.args.get("after", type=int),
                          limit=request.args.get("limit", 20, type=int)))


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
    return jsonify(page_json(panels))


@bp.route("/deals/<int:deal_id>", methods=["PATCH"])
def deals_update(deal_id: int) -> Any:
    """Change name, client_id, manager_id, type_id or expected_amount; send ``version``."""
    need("deals")
    data = body()
    version = data.pop("version", None)
    return jsonify(remote("deals", "update_deal", deal_id, data, user_id=g.user.id,
                          version=version))


@bp.route("/deals/<int:deal_id>/status", methods=["POST"])
def deals_status(deal_id: int) -> Any:
    need("deals")
    data = body()
    return jsonify(remote("deals", "change_status", deal_id, data.get("status", ""),
                          user_id=g.user.id, version=data.get("version"),
                          loss_reason_id=data.get("loss_reason_id"),
                          loss_comment=data.get("loss_comment")))


@bp.route("/deals/<int:deal_id>/stage", methods=["POST"])
def deals_stage(deal_id: int) -> Any:
    need("deals")
    data = body()
    return jsonify(remote("deals", "change_stage", deal_id, data.get("stage", ""),
                          user_id=g.user.id, version=data.get("version"),
                          loss_reason_id=data.get("loss_reason_id"),
                          loss_comment=data.get("loss_comment")))


@bp.route("/deals/<int:deal_id>/history")
def deals_history(deal_id: int) -> Any:
    need("deals")
    return jsonify(remote("deals", "deal_history", deal_id))


@bp.route("/deals/<int:deal_id>/contacts", methods=["POST"])
def deals_add_contact(deal_id: int) -> Any:
    """``{"contact_id": n}`` adds back a client's contact; a new person is added to the
    client too."""
    need("deals")
    return jsonify(remote("deals", "add_deal_contact", deal_id, body(), user_id=g.user.id)), 201


@bp.route("/deals/<int:deal_id>/contacts/<int:contact_id>", methods=["DELETE"])
def deals_remove_contact(deal_id: int, contact_id: int) -> Any:
    need("deals")
    remote("deals", "remove_deal_contact", deal_id, contact_id, user_id=g.user.id)
    return "", 204


@bp.route("/deals/<int:deal_id>/contacts/<int:contact_id>/main", methods=["POST"])
def deals_main_contact(deal_id: int, contact_id: int) -> Any:
    need("deals")
    remote("deals", "set_main_contact", deal_id, contact_id, user_id=g.user.id)
    return jsonify({"contact_id": contact_id, "is_main": True})


@bp.route("/deals/<int:deal_id>/comments", methods=["POST"])
def deals_comment(deal_id: int) -> Any:
    """JSON ``{"text"}``, or multipart with ``text`` and ``files`` (size-limited; images
    recognised by their bytes)."""
    need("deals")
    text = request.form.get("text", "") if request.files or request.form else \
        body().get("text", "")
    return jsonify(add_comment_with_files(deal_id, text)), 201


@bp.route("/deals/<int:deal_id>/files/<key>")
def deals_file(deal_id: int, key: str) -> Any:
    need("deals")
    return send_attachment(deal_id, key)


@bp.route("/deals/<int:deal_id>/reminders", methods=["POST"])
def deals_add_reminder(deal_id: int) -> Any:
    """``{"text", "due_at" (ISO; without offset: the company's time zone), "assignee_id"}``"""
    need("deals")
    return jsonify(remote("deals", "create_reminder", deal_id, body(), user_id=g.user.id)), 201


@bp.route("/reminders")
def reminders_list() -> Any:
    """Open reminders: mine (default), or of ``client_id`` / ``deal_id``."""
    need("deals")
    client_id = request.args.get("client_id", type=int)
    deal_id = request.args.get("deal_id", type=int)
    mine = client_id is None and deal_id is None
    return jsonify(remote("deals", "list_reminders", client_id=client_id, deal_id=deal_id,
                          user_id=g.user.id if mine else None,
                          roles=list(g.user.roles) if mine else None,
                          open_only=request.args.get("all") != "1"))


@bp.route("/reminders/<int:reminder_id>/complete", methods=["POST"])
def reminders_complete(reminder_id: int) -> Any:
    need("deals")
    return jsonify(remote("deals", "complete_reminder", reminder_id, user_id=g.user.id))


@bp.route("/deals/<int:deal_id>/orders")
def deals_orders(deal_id: int) -> Any:
    need("deals")
    return jsonify(remote("deals", "list_orders", deal_id))


@bp.route("/deals/<int:deal_id>/orders", methods=["POST"])
def deals_create_order(deal_id: int) -> Any:
    need("deals")
    return jsonify(remote("deals", "create_order", deal_id, body(), user_id=g.user.id)), 201


@bp.route("/orders/<int:order_id>/status", methods=["POST"])
def orders_status(order_id: int) -> Any:
    need("deals")
    data = body()
    return jsonify(remote("deals", "change_order_status", order_id, data.get("status", ""),
                          user_id=g.user.id, version=data.get("version")))


@bp.route("/deals/<int:deal_id>/calculation", methods=["PUT"])
def deals_calculation(deal_id: int) -> Any:
    """Save the cost calculation; its total becomes the deal's expected amount."""
    need("deals")
    return jsonify(remote("deals", "save_calculation", deal_id, body().get("lines"),
                          user_id=g.user.id))


@bp.route("/deals/<int:deal_id>/calculation/plan", methods=["POST"])
def deals_payment_plan(deal_id: int) -> Any:
    """Create the payment plan in payments from the saved calculation."""
    need("deals")
    return jsonify(remote("deals", "create_payment_plan", deal_id, body(),
                          user_id=g.user.id)), 201


@bp.route("/deals/<int:deal_id>/parties", methods=["POST"])
def deals_add_party(deal_id: int) -> Any:
    need("deals")
    return jsonify(remote("deals", "add_party", deal_id, body(), user_id=g.user.id)), 201


@bp.route("/deals/<int:deal_id>/parties/<int:party_id>", methods=["DELETE"])
def deals_remove_party(deal_id: int, party_id: int) -> Any:
    need("deals")
    remote("deals", "remove_party", deal_id, party_id, user_id=g.user.id)
    return "", 204


describe_body("api.deals_create", {"type": "object", "required": ["name", "client_id"],
                                   "properties": {
                                       "name": {"type": "string"},
                                       "client_id": {"type": "integer"},
                                       "type_id": {"type": "integer"},
                                       "status": {"type": "string"},
                                       "manager_id": {"type": "integer"},
                                       "expected_amount": {"type": "string"}}})
describe_body("api.deals_update", {"type": "object", "properties": {
    "name": {"type": "string"}, "client_id": {"type": "integer"},
    "manager_id": {"type": "integer"}, "type_id": {"type": ["integer", "null"]},
    "expected_amount": {"type": "string"}, "version": {"type": "integer"}}})
describe_body("api.deals_status", {"type": "object", "required": ["status"], "properties": {
    "status": {"type": "string"}, "version": {"type": "integer"},
    "loss_reason_id": {"type": "integer"}, "loss_comment": {"type": "string"}}})
describe_body("api.deals_stage", {"type": "object", "required": ["stage"], "properties": {
    "stage": {"type": "string"}, "version": {"type": "integer"},
    "loss_reason_id": {"type": "integer"}, "loss_comment": {"type": "string"}}})
describe_body("api.deals_add_contact", {"type": "object", "properties": {
    "contact_id": {"type": "integer"}, "name": {"type": "string"},
    "position": {"type": "string"}, "phones": {"type": "array", "items": {"type": "string"}},
    "emails": {"type": "array", "items": {"type": "string"}}}})
describe_body("api.deals_comment", {"type": "object", "properties": {"text": {"type": "string"}}})
describe_body("api.deals_add_reminder", {"type": "object", "required": ["text", "due_at"],
                                         "properties": {
                                             "text": {"type": "string"},
                                             "due_at": {"type": "string",
                                                        "format": "date-time"},
                                             "assignee_id": {"type": "integer"}}})
describe_body("api.deals_create_order", {"type": "object", "required": ["lines"], "properties": {
    "order_date": {"type": "string", "format": "date"},
    "status": {"enum": ["new", "confirmed", "shipped", "done", "cancelled"]},
    "comment": {"type": "string"}, "lines": LINES}})
describe_body("api.orders_status", {"type": "object", "required": ["status"], "properties": {
    "status": {"type": "string"}, "version": {"type": "integer"}}})
describe_body("api.deals_calculation", {"type": "object", "required": ["lines"],
                                        "properties": {"lines": LINES}})
describe_body("api.deals_payment_plan", {"type": "object", "properties": {
    "parts": {"type": "integer"}, "first_due_date": {"type": "string", "format": "date"}}})
describe_body("api.deals_add_party", {"type": "object", "required": ["role"], "properties": {
    "role": {"enum": ["competitor", "subcontractor", "influencer"]},
    "client_id": {"type": "integer"}, "name": {"type": "string"}, "note": {"type": "string"}}})
