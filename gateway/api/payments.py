"""API: payment plans and receipts, overdue payments, the cash-flow forecast, statement
imports, own accounts, the review queue, and the online payment provider's webhook.

Every endpoint declares its input and output with the models below (``gateway.api.schema``):
they validate the request before any RPC and are the OpenAPI document."""
from __future__ import annotations

import io
from typing import Annotated, Any, Literal

from flask import g, request, send_file
from pydantic import Field

from gateway.api import bp
from gateway.api.openapi import public
from gateway.api.schema import (
    Day,
    Id,
    Input,
    Limit,
    Money,
    Output,
    Query,
    SmallId,
    Version,
    endpoint,
)
from gateway.api.schema import Items as Array
from gateway.remote import remote, user_names
from gateway.sections.payments import (
    forecast_query,
    forecast_xlsx,
    need_finance,
    queue_statement,
    uploaded_file,
)
from services.kit import parse
from services.kit.errors import ValidationError

Comment = Annotated[str, Limit(2000, required=False)]
DocNumber = Annotated[str, Limit(60, required=False)]
Reason = Annotated[str, Limit(2000)]
Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")]
PageNo = Annotated[int, Field(ge=1, le=100_000)]
PerPage = Annotated[int, Field(ge=1, le=500)]


# --- what the payments service answers ----------------------------------------------------

class Payment(Output):
    id: int
    deal_id: int
    amount: str
    due_date: str
    status: str
    version: int


class Receipt(Output):
    id: int
    amount: str


class DealPayments(Output):
    payments: list[Payment]
    receipts: list[Receipt]
    budget: str
    paid: str
    outstanding: str


class Received(Output):
    payment: Payment
    receipt: Receipt


class Corrected(Output):
    receipt: Receipt
    payment: Payment
    correction: dict[str, Any] | None


class Listing(Output):
    items: list[dict[str, Any]]


class Overdue(Output):
    count: int
    amount: str


class Forecast(Output):
    periods: list[dict[str, Any]]


class ImportJob(Output):
    id: int
    status: str


class ImportPage(Output):
    items: list[ImportJob]
    total: int


class Account(Output):
    account: str


class Transaction(Output):
    id: int


class Notice(Output):
    status: str


# --- what callers send --------------------------------------------------------------------

class PaymentAdd(Input):
    amount: Money
    due_date: Day
    currency: Currency = "RUB"
    comment: Comment | None = None
    invoice_number: DocNumber | None = None
    contract_number: DocNumber | None = None


class PaymentUpdate(Input):
    amount: Money | None = None
    comment: Comment | None = None
    invoice_number: DocNumber | None = None
    contract_number: DocNumber | None = None
    version: Version | None = None


class WithReason(Input):
    reason: Reason


class DueDateMove(Input):
    due_date: Day
    reason: Reason


class ReceiptAdd(Input):
    amount: Money | None = Field(None, description="default: the outstanding amount")
    received_on: Day | None = Field(None, description="default: today; not in the future")
    comment: Comment | None = None


class ReceiptCorrection(Input):
    amount: Money | None = None
    received_on: Day | None = None
    reason: Reason


class AccountAdd(Input):
    account: Annotated[str, Limit(34)]
    name: Annotated[str, Limit(200, required=False)] | None = None


class Allocation(Input):
    payment_id: Id
    amount: Money


class Resolution(Input):
    action: Literal["confirm", "split", "dismiss"]
    payment_id: Id | None = None
    allocations: Annotated[list[Allocation], Field(max_length=100)] | None = None
    note: Comment | None = None


class OverdueQuery(Query):
    manager_id: SmallId | None = None
    page: PageNo | None = None
    per_page: PerPage | None = None


class DealIdsQuery(Query):
    # within the URL limit (gateway.edge.MAX_URL_BYTES): a longer list could not arrive
    deal_ids: Annotated[str, Limit(3500, required=False)] = Field(
        "", description="comma-separated deal ids (at most 1000)")


class ForecastQuery(Query):
    granularity: Literal["day", "week", "month"] | None = None
    periods: Annotated[int, Field(ge=1, le=60)] | None = None
    past: Annotated[int, Field(ge=0, le=60)] | None = None
    manager_id: SmallId | None = None
    currency: Currency | None = None
    format: Literal["json", "xlsx"] | None = None


class PageQuery(Query):
    page: PageNo | None = None


class TransactionsQuery(Query):
    status: Annotated[str, Limit(30)] | None = None
    page: PageNo | None = None
    per_page: PerPage | None = None


class ReviewQuery(TransactionsQuery):
    status: Literal["review", "unmatched"] | None = None


class UploadQuery(Query):
    filename: Annotated[str, Limit(255)] | None = None


def _query(model: Query) -> dict[str, Any]:
    """The query as the service takes it: only what was sent, as text like the URL."""
    return {k: str(v) for k, v in model.model_dump(exclude_none=True).items()}


# --- payment plans -----------------------------------------------------------------------


@bp.route("/deals/<int:deal_id>/payments")
@endpoint(section="payments", response=DealPayments)
def payments_of_deal(deal_id: int) -> Any:
    """The deal's plan, receipts, corrections and totals"""
    return remote("payments", "deal_payments", deal_id)


@bp.route("/deals/<int:deal_id>/payments", methods=["POST"])
@endpoint(section="payments", body=PaymentAdd, response=Payment, status=201)
def payments_add(deal_id: int, body: PaymentAdd) -> Any:
    """Plan a payment of the deal"""
    return remote("payments", "add_planned_payment", deal_id, body.sent(),
                  user_id=g.user.id), 201


@bp.route("/payments/<int:payment_id>", methods=["PATCH"])
@endpoint(section="payments", body=PaymentUpdate, response=Payment,
          statuses={409: "stale version"})
def payments_update(payment_id: int, body: PaymentUpdate) -> Any:
    """Change a planned payment's amount, comment or document numbers"""
    return remote("payments", "update_planned_payment", payment_id, body.sent(),
                  user_id=g.user.id)


@bp.route("/payments/<int:payment_id>/cancel", methods=["POST"])
@endpoint(section="payments", body=WithReason, response=Payment)
def payments_cancel(payment_id: int, body: WithReason) -> Any:
    """Cancel a planned payment (nothing received against it)"""
    return remote("payments", "cancel_planned_payment", payment_id, body.sent(),
                  user_id=g.user.id)


@bp.route("/payments/<int:payment_id>/due-date", methods=["POST"])
@endpoint(section="payments", body=DueDateMove, response=Payment)
def payments_move(payment_id: int, body: DueDateMove) -> Any:
    """Move a due date, with the reason"""
    return remote("payments", "move_due_date", payment_id, body.sent(), user_id=g.user.id)


@bp.route("/payments/<int:payment_id>/receipts", methods=["POST"])
@endpoint(section="payments", body=ReceiptAdd, response=Received, status=201,
          body_required=False)
def payments_receive(payment_id: int, body: ReceiptAdd) -> Any:
    """Record money received against a planned payment"""
    return remote("payments", "mark_received", payment_id, body.sent(),
                  user_id=g.user.id), 201


@bp.route("/payments/receipts/<int:receipt_id>/correction", methods=["POST"])
@endpoint(section="payments", body=ReceiptCorrection, response=Corrected)
def payments_correct_receipt(receipt_id: int, body: ReceiptCorrection) -> Any:
    """Correct a manual receipt's amount or date (accountant)"""
    need_finance()
    return remote("payments", "correct_receipt", receipt_id, body.sent(), user_id=g.user.id)


@bp.route("/payments/receipts/<int:receipt_id>/cancel", methods=["POST"])
@endpoint(section="payments", body=WithReason, response=Corrected)
def payments_cancel_receipt(receipt_id: int, body: WithReason) -> Any:
    """Cancel a receipt (accountant); bank money goes back to the review queue"""
    need_finance()
    return remote("payments", "cancel_receipt", receipt_id, body.sent(), user_id=g.user.id)


# --- overdue and forecast ------------------------------------------------------------------


@bp.route("/payments/overdue")
@endpoint(section="payments", query=OverdueQuery, response=Listing)
def payments_overdue(query: OverdueQuery) -> Any:
    """Overdue planned payments, oldest first (accountant, head of sales)"""
    need_finance()
    return remote("payments", "overdue_payments", _query(query))


@bp.route("/payments/overdue-by-deal")
@endpoint(section="payments", query=DealIdsQuery, response=dict[str, Overdue])
def payments_overdue_by_deal(query: DealIdsQuery) -> Any:
    """Overdue count and amount per deal: ?deal_ids=1,2,3"""
    parts = [part for part in query.deal_ids.split(",") if part.strip()]
    if len(parts) > 1000:
        raise ValidationError("Не больше 1000 сделок за раз.", "deal_ids",
                              key="list.too_long", params={"max": 1000})
    errors = parse.Collector()
    ids = [errors.check(parse.identifier, part, "deal_ids") for part in parts]
    errors.raise_any()
    return remote("payments", "overdue_by_deal", ids)


@bp.route("/payments/forecast")
@endpoint(section="payments", query=ForecastQuery, response=Forecast,
          content_types=("application/json", "application/vnd.openxmlformats-officedocument"
                                             ".spreadsheetml.sheet"))
def payments_forecast(query: ForecastQuery) -> Any:
    """Expected receipts per period, overall and per manager; ?format=xlsx for a workbook
    (application/vnd.openxmlformats-officedocument.spreadsheetml.sheet)"""
    data = remote("payments", "forecast", forecast_query(request.args))
    if query.format == "xlsx":
        content = forecast_xlsx(data, user_names(), g.t)
        return send_file(io.BytesIO(content), as_attachment=True,
                         download_name="forecast.xlsx",
                         mimetype="application/vnd.openxmlformats-officedocument."
                                  "spreadsheetml.sheet")
    return data


# --- statements ----------------------------------------------------------------------------


@bp.route("/payments/imports", methods=["POST"])
@endpoint(section="payments", query=UploadQuery, response=ImportJob, status=202)
def payments_upload(query: UploadQuery) -> Any:
    """Upload a statement (multipart `file`, or the raw file as the body with
    ?filename=); answers 202 at once with the import job to poll"""
    need_finance()
    if request.files:
        upload = uploaded_file()
        job = queue_statement(upload.stream, upload.filename or "statement")
    else:
        job = queue_statement(request.stream, query.filename or "statement")
    return job, 202


@bp.route("/payments/imports")
@endpoint(section="payments", query=PageQuery, response=ImportPage)
def payments_imports(query: PageQuery) -> Any:
    """Import jobs, newest first"""
    need_finance()
    return remote("payments", "list_imports", {"page": query.page or 1})


@bp.route("/payments/imports/<int:job_id>")
@endpoint(section="payments", response=ImportJob)
def payments_import(job_id: int) -> Any:
    """One import: status, progress, counts, or the error with its line/element"""
    need_finance()
    return remote("payments", "get_import", job_id)


@bp.route("/payments/imports/<int:job_id>/transactions")
@endpoint(section="payments", query=TransactionsQuery, response=Listing)
def payments_import_transactions(job_id: int, query: TransactionsQuery) -> Any:
    """Transactions of one import; ?status=matched|review|unmatched|foreign_account|..."""
    need_finance()
    return remote("payments", "import_transactions", job_id, _query(query))


@bp.route("/payments/accounts")
@endpoint(section="payments", response=Array[Account])
def payments_accounts() -> Any:
    """Our own bank accounts (only credits to them are matched)"""
    need_finance()
    return remote("payments", "list_own_accounts")


@bp.route("/payments/accounts", methods=["POST"])
@endpoint(section="payments", body=AccountAdd, response=Account, status=201)
def payments_add_account(body: AccountAdd) -> Any:
    """Add an own account; its already imported credits are matched in the background"""
    need_finance()
    return remote("payments", "add_own_account", body.sent(), user_id=g.user.id), 201


@bp.route("/payments/accounts/<account>", methods=["DELETE"])
@endpoint(section="payments", response=bool)
def payments_remove_account(account: str) -> Any:
    """Remove an own account (answers true)"""
    need_finance()
    return remote("payments", "remove_own_account", parse.text(account, "account", limit=34),
                  user_id=g.user.id)


@bp.route("/payments/review")
@endpoint(section="payments", query=ReviewQuery, response=Listing)
def payments_review(query: ReviewQuery) -> Any:
    """Transactions waiting for a person (?status=review|unmatched)"""
    need_finance()
    return remote("payments", "review_queue", _query(query))


@bp.route("/payments/transactions/<int:transaction_id>/resolve", methods=["POST"])
@endpoint(section="payments", body=Resolution, response=Transaction)
def payments_resolve(transaction_id: int, body: Resolution) -> Any:
    """Confirm a match, pick another payment, split the amount, or dismiss"""
    need_finance()
    return remote("payments", "resolve_transaction", transaction_id, body.sent(),
                  user_id=g.user.id)


# --- online payment ------------------------------------------------------------------------


class ProviderObject(Output):
    id: Annotated[str, Limit(100)]


class ProviderNotice(Output):
    """YooKassa's notification; the service checks it with the provider, so more fields
    than these pass through to it."""

    type: Literal["notification"]
    event: Annotated[str, Limit(100)]
    object: ProviderObject


@bp.route("/payments/webhooks/yookassa", methods=["POST"])
@endpoint(body=ProviderNotice, response=Notice)
def payments_webhook(body: ProviderNotice) -> Any:
    """The payment provider's notification (YooKassa payment.succeeded), checked with the
    provider's API before anything is recorded; a repeated notification changes nothing"""
    return remote("payments", "online_payment_notification", body.model_dump(mode="json"))


public("api.payments_webhook")
