"""API: deals and their board, the aggregated deal page, and everything on it (contacts,
comments with files, reminders, orders, calculator, environment, history).

Every endpoint declares its input and output with the models below (``gateway.api.schema``):
they validate the request before any RPC and are the OpenAPI document."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import g, jsonify, request
from pydantic import Field

from gateway.api import body as json_body
from gateway.api import bp
from gateway.api.schema import (
    Day,
    Id,
    Input,
    Items,
    Limit,
    Money,
    Output,
    Query,
    SmallId,
    Version,
    endpoint,
)
from gateway.deal_page import load_deal_page, page_json
from gateway.remote import remote
from gateway.sections.deals import add_comment_with_files, board_filter, send_attachment
from gateway.timing import phase, with_timing

Name = Annotated[str, Limit(500)]
LongText = Annotated[str, Limit(10_000)]
Code = Annotated[str, Limit(50)]
Number = Annotated[str, Limit(40)]  # a quantity or percent as text; the service checks it
Page = Annotated[int, Field(ge=1, le=500)]


# --- what the deals service answers -------------------------------------------------------

class Status(Output):
    id: int
    code: str
    name: str
    kind: str


class DealType(Output):
    id: int
    name: str
    stages: list[dict[str, Any]]


class LossReason(Output):
    id: int
    name: str
    active: bool


class Deal(Output):
    id: int
    name: str
    client_id: int
    status: dict[str, Any]
    manager_id: int | None
    version: int
    probability: int | None = None  # set by hand (percent)
    planned_close_on: str | None = None  # ISO date the manager plans to close it
    source: str = "manual"  # manual, web_form, api, email, call, questionnaire
    source_detail: dict[str, str] | None = None  # UTM tags, page_url, referrer, form_id, lead_id


class Card(Output):
    id: int
    name: str


class CardPage(Output):
    items: list[Card]
    next_after: int | None


class Column(Output):
    status: dict[str, Any]
    count: int
    deals: list[Card]
    next_after: int | None


class Board(Output):
    columns: list[Column]
    total: dict[str, Any]


class ColumnPage(Output):
    deals: list[Card]
    next_after: int | None


class DealPage(Output):
    deal: dict[str, Any] | None
    # analytics' win-probability estimate (analytics.win_probability); null: unavailable
    probability: dict[str, Any] | None = None
    unavailable: dict[str, Any]
    feed: list[dict[str, Any]]


class HistoryLine(Output):
    field: str
    old_value: Any
    new_value: Any
    user_id: int | None
    changed_at: str


class DealContact(Output):
    contact_id: int
    name: str
    is_main: bool


class MainContact(Output):
    contact_id: int
    is_main: bool


class FeedEntry(Output):
    id: int
    kind: str
    created_at: str


class Reminder(Output):
    id: int
    text: str
    due_at: str


class Order(Output):
    id: int
    deal_id: int
    number: str
    status: str
    amount: str
    lines: list[dict[str, Any]]
    version: int


class Calculation(Output):
    total: str
    lines: list[dict[str, Any]]


class Party(Output):
    id: int
    role: str


class PlannedPayment(Output):
    id: int
    deal_id: int
    amount: str
    due_date: str


# --- what callers send --------------------------------------------------------------------

class Line(Input):
    kind: Literal["goods", "service"] = "goods"
    name: Name
    quantity: Number | int | None = None
    unit_price: Money
    discount: Number | int | None = None
    unit: Annotated[str, Limit(20, required=False)] | None = None
    catalogue_id: Id | None = Field(None, description="the catalogue item (GET /products); "
                                    "absent: a free-text line")


class DealCreate(Input):
    name: Name
    client_id: Id
    type_id: SmallId | None = None
    status: Code | None = None
    manager_id: SmallId | None = None
    expected_amount: Money | None = None
    planned_close_on: Day | None = None
    source: Literal["manual", "web_form", "api", "email", "call", "questionnaire"] | None = None
    # utm_source, utm_medium, utm_campaign, utm_term, utm_content, page_url, referrer,
    # form_id, lead_id (the service refuses any other key)
    source_detail: dict[str, Annotated[str, Limit(500, required=False)]] | None = None


class DealUpdate(Input):
    name: Name | None = None
    client_id: Id | None = None
    manager_id: SmallId | None = None
    type_id: SmallId | None = None
    expected_amount: Money | None = None
    # a win probability set by hand, whole percent 0–100 (null clears it)
    probability: int | None = Field(default=None, ge=0, le=100)
    planned_close_on: Day | None = None  # null clears it
    version: Version | None = None


class StatusMove(Input):
    status: Code
    version: Version | None = None
    loss_reason_id: SmallId | None = None
    loss_comment: Annotated[str, Limit(2000, required=False)] | None = None


class StageMove(Input):
    stage: Code
    version: Version | None = None
    loss_reason_id: SmallId | None = None
    loss_comment: Annotated[str, Limit(2000, required=False)] | None = None


class ContactAdd(Input):
    contact_id: Id | None = None
    name: Name | None = None
    position: Annotated[str, Limit(200, required=False)] | None = None
    phones: Annotated[list[Annotated[str, Limit(40)]], Field(max_length=20)] = []
    emails: Annotated[list[Annotated[str, Limit(254)]], Field(max_length=20)] = []


class ReminderAdd(Input):
    text: Annotated[str, Limit(2000)]
    due_at: Annotated[str, Limit(40)] = Field(
        description="ISO date-time; without an offset: the company's time zone")
    assignee_id: SmallId | None = None


class OrderAdd(Input):
    order_date: Day | None = None
    status: Literal["new", "confirmed", "shipped", "done", "cancelled"] = "new"
    comment: Annotated[str, Limit(2000, required=False)] | None = None
    lines: Annotated[list[Line], Field(min_length=1, max_length=500)]


class OrderStatus(Input):
    status: Literal["new", "confirmed", "shipped", "done", "cancelled"]
    version: Version | None = None


class CalculationSave(Input):
    lines: Annotated[list[Line], Field(max_length=500)]


class PlanCreate(Input):
    parts: Annotated[int, Field(ge=1, le=60)] = 1
    first_due_date: Day | None = None


class PartyAdd(Input):
    role: Literal["competitor", "subcontractor", "influencer"]
    client_id: Id | None = None
    name: Name | None = None
    note: Annotated[str, Limit(2000, required=False)] | None = None


class Comment(Input):
    text: LongText


class DealsQuery(Query):
    page: Literal["1"] | None = Field(None, description="1: a keyset page of the board filter")
    after: Id | None = None
    limit: Page | None = None
    manager_id: SmallId | None = None
    manager: Annotated[str, Limit(20)] | None = Field(None, description="all, or an id")
    mine: Literal["0", "1"] | None = None
    status: Code | None = None
    type_id: SmallId | None = None
    client_id: Id | None = None
    client: Name | None = None
    amount_min: Money | None = None
    amount_max: Money | None = None
    created_from: Day | None = None
    created_to: Day | None = None
    closed_from: Day | None = None
    closed_to: Day | None = None
    has_task: Literal["0", "1", "yes", "no"] | None = None
    q: Name | None = None
    sort: Literal["name", "-name", "amount", "-amount", "created_at", "-created_at",
                  "updated_at", "-updated_at", "planned_close_on", "-planned_close_on",
                  "status", "-status", "manager", "-manager"] | None = Field(
        None, description="the keyset page's order (with page/after); '-' descending")


class BoardQuery(DealsQuery):
    per_column: Annotated[int, Field(ge=1, le=200)] = 20


class RemindersQuery(Query):
    client_id: Id | None = None
    deal_id: Id | None = None
    all: Literal["0", "1"] | None = None


@bp.route("/statuses")
@endpoint(section="deals", response=Items[Status])
def statuses() -> Any:
    """Deal statuses by position"""
    return remote("deals", "list_statuses")


@bp.route("/deal-types")
@endpoint(section="deals", response=Items[DealType])
def deal_types() -> Any:
    """Deal types with their stages"""
    return remote("deals", "list_deal_types")


@bp.route("/loss-reasons")
@endpoint(section="deals", response=Items[LossReason])
def loss_reasons() -> Any:
    """Reasons a deal is lost"""
    return remote("deals", "list_loss_reasons")


@bp.route("/deals")
@endpoint(section="deals", query=DealsQuery, response=Items[Deal] | CardPage)
def deals_list(query: DealsQuery) -> Any:
    """Deals, newest first.  Without ``after``/``page``, an array; with ``page=1`` (or
    ``after``) a keyset page ``{items, next_after}`` of the board's filter."""
    if query.after is not None or query.page:
        return remote("deals", "search_deals", board_filter(request.args, g.user),
                      after=query.after, limit=query.limit or 50, sort=query.sort)
    manager = g.user.id if query.mine == "1" else query.manager_id
    return remote("deals", "list_deals", manager_id=manager, status=query.status,
                  client_id=query.client_id)


@bp.route("/deals/board")
@endpoint(section="deals", query=BoardQuery, response=Board)
def deals_board(query: BoardQuery) -> Any:
    """The kanban: every status with its count, total amount and first page of cards.
    Filters as on the page (``manager=all`` removes the default "my deals")."""
    return remote("deals", "board", board_filter(request.args, g.user),
                  per_column=query.per_column)


@bp.route("/deals/board/<status>")
@endpoint(section="deals", query=DealsQuery, response=ColumnPage)
def deals_board_column(status: str, query: DealsQuery) -> Any:
    """The next page of one column (``after``: the last card's id)."""
    return remote("deals", "board_column", status, board_filter(request.args, g.user),
                  after=query.after, limit=query.limit or 20)


@bp.route("/deals", methods=["POST"])
@endpoint(section="deals", body=DealCreate, response=Deal, status=201)
def deals_create(body: DealCreate) -> Any:
    """Create a deal for a client"""
    return remote("deals", "create_deal", body.sent(), user_id=g.user.id), 201


@bp.route("/deals/<int:deal_id>")
@endpoint(section="deals", response=DealPage)
def deals_page(deal_id: int) -> Any:
    """The aggregated deal page; panels of services that did not answer are null and listed
    under ``unavailable``."""
    with phase("rpc"):
        panels = load_deal_page(deal_id, g.user.id)
    with phase("json"):
        response = jsonify(page_json(panels))
    return with_timing(response)


@bp.route("/deals/<int:deal_id>", methods=["PATCH"])
@endpoint(section="deals", body=DealUpdate, response=Deal, statuses={409: "stale version"})
def deals_update(deal_id: int, body: DealUpdate) -> Any:
    """Change name, client_id, manager_id, type_id or expected_amount; send ``version``."""
    changes = body.sent()
    version = changes.pop("version", None)
    return remote("deals", "update_deal", deal_id, changes, user_id=g.user.id,
                  version=version)


@bp.route("/deals/<int:deal_id>/status", methods=["POST"])
@endpoint(section="deals", body=StatusMove, response=Deal)
def deals_status(deal_id: int, body: StatusMove) -> Any:
    """Move a deal to a status (the process picks the stage)"""
    return remote("deals", "change_status", deal_id, body.status, user_id=g.user.id,
                  version=body.version, loss_reason_id=body.loss_reason_id,
                  loss_comment=body.loss_comment)


@bp.route("/deals/<int:deal_id>/stage", methods=["POST"])
@endpoint(section="deals", body=StageMove, response=Deal)
def deals_stage(deal_id: int, body: StageMove) -> Any:
    """Move a deal to a stage of its type"""
    return remote("deals", "change_stage", deal_id, body.stage, user_id=g.user.id,
                  version=body.version, loss_reason_id=body.loss_reason_id,
                  loss_comment=body.loss_comment)


@bp.route("/deals/<int:deal_id>/history")
@endpoint(section="deals", response=Items[HistoryLine])
def deals_history(deal_id: int) -> Any:
    """Changes of the deal, newest first"""
    return remote("deals", "deal_history", deal_id)


@bp.route("/deals/<int:deal_id>/contacts", methods=["POST"])
@endpoint(section="deals", body=ContactAdd, response=DealContact, status=201)
def deals_add_contact(deal_id: int, body: ContactAdd) -> Any:
    """``{"contact_id": n}`` adds back a client's contact; a new person is added to the
    client too."""
    return remote("deals", "add_deal_contact", deal_id, body.sent(), user_id=g.user.id), 201


@bp.route("/deals/<int:deal_id>/contacts/<int:contact_id>", methods=["DELETE"])
@endpoint(section="deals", status=204)
def deals_remove_contact(deal_id: int, contact_id: int) -> Any:
    """Take a contact off the deal (the client keeps it)"""
    remote("deals", "remove_deal_contact", deal_id, contact_id, user_id=g.user.id)
    return "", 204


@bp.route("/deals/<int:deal_id>/contacts/<int:contact_id>/main", methods=["POST"])
@endpoint(section="deals", response=MainContact)
def deals_main_contact(deal_id: int, contact_id: int) -> Any:
    """Make a contact the deal's main one"""
    remote("deals", "set_main_contact", deal_id, contact_id, user_id=g.user.id)
    return {"contact_id": contact_id, "is_main": True}


@bp.route("/deals/<int:deal_id>/comments", methods=["POST"])
@endpoint(section="deals", response=FeedEntry, status=201)
def deals_comment(deal_id: int) -> Any:
    """JSON ``{"text"}``, or multipart with ``text`` and ``files`` (size-limited; images
    recognised by their bytes)."""
    if request.files or request.form:
        text = request.form.get("text", "")
    else:
        from gateway.api.schema import validate

        text = validate(Comment, json_body(), "").text
    return add_comment_with_files(deal_id, text), 201


@bp.route("/deals/<int:deal_id>/files/<key>")
@endpoint(section="deals", content_type="application/octet-stream")
def deals_file(deal_id: int, key: str) -> Any:
    """A file attached to a comment of the deal"""
    return send_attachment(deal_id, key)


@bp.route("/deals/<int:deal_id>/reminders", methods=["POST"])
@endpoint(section="deals", body=ReminderAdd, response=Reminder, status=201)
def deals_add_reminder(deal_id: int, body: ReminderAdd) -> Any:
    """``{"text", "due_at" (ISO; without offset: the company's time zone), "assignee_id"}``"""
    return remote("deals", "create_reminder", deal_id, body.sent(), user_id=g.user.id), 201


@bp.route("/reminders")
@endpoint(section="deals", query=RemindersQuery, response=Items[Reminder])
def reminders_list(query: RemindersQuery) -> Any:
    """Open reminders: mine (default), or of ``client_id`` / ``deal_id``."""
    mine = query.client_id is None and query.deal_id is None
    return remote("deals", "list_reminders", client_id=query.client_id,
                  deal_id=query.deal_id, user_id=g.user.id if mine else None,
                  roles=list(g.user.roles) if mine else None, open_only=query.all != "1")


@bp.route("/reminders/<int:reminder_id>/complete", methods=["POST"])
@endpoint(section="deals", response=Reminder)
def reminders_complete(reminder_id: int) -> Any:
    """Mark a reminder done (again: no change)"""
    return remote("deals", "complete_reminder", reminder_id, user_id=g.user.id)


@bp.route("/deals/<int:deal_id>/orders")
@endpoint(section="deals", response=Items[Order])
def deals_orders(deal_id: int) -> Any:
    """The deal's orders, newest first"""
    return remote("deals", "list_orders", deal_id)


@bp.route("/deals/<int:deal_id>/orders", methods=["POST"])
@endpoint(section="deals", body=OrderAdd, response=Order, status=201)
def deals_create_order(deal_id: int, body: OrderAdd) -> Any:
    """Create an order of goods and services"""
    return remote("deals", "create_order", deal_id, body.sent(), user_id=g.user.id), 201


@bp.route("/orders/<int:order_id>/status", methods=["POST"])
@endpoint(section="deals", body=OrderStatus, response=Order)
def orders_status(order_id: int, body: OrderStatus) -> Any:
    """Move an order to another status"""
    return remote("deals", "change_order_status", order_id, body.status,
                  user_id=g.user.id, version=body.version)


@bp.route("/deals/<int:deal_id>/calculation", methods=["PUT"])
@endpoint(section="deals", body=CalculationSave, response=Calculation)
def deals_calculation(deal_id: int, body: CalculationSave) -> Any:
    """Save the cost calculation; its total becomes the deal's expected amount."""
    return remote("deals", "save_calculation", deal_id, body.sent()["lines"],
                  user_id=g.user.id)


@bp.route("/deals/<int:deal_id>/calculation/plan", methods=["POST"])
@endpoint(section="deals", body=PlanCreate, response=Items[PlannedPayment], status=201,
          body_required=False, statuses={409: "the deal has a plan already"})
def deals_payment_plan(deal_id: int, body: PlanCreate) -> Any:
    """Create the payment plan in payments from the saved calculation."""
    return remote("deals", "create_payment_plan", deal_id, body.sent(),
                  user_id=g.user.id), 201


@bp.route("/deals/<int:deal_id>/parties", methods=["POST"])
@endpoint(section="deals", body=PartyAdd, response=Party, status=201)
def deals_add_party(deal_id: int, body: PartyAdd) -> Any:
    """Add a competitor, subcontractor or influencer to the deal's environment"""
    return remote("deals", "add_party", deal_id, body.sent(), user_id=g.user.id), 201


@bp.route("/deals/<int:deal_id>/parties/<int:party_id>", methods=["DELETE"])
@endpoint(section="deals", status=204)
def deals_remove_party(deal_id: int, party_id: int) -> Any:
    """Remove a party from the deal's environment"""
    remote("deals", "remove_party", deal_id, party_id, user_id=g.user.id)
    return "", 204
