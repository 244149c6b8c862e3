"""Persistence shared by the entry points and the statement import: locking a planned
payment, receipts, budgets, events in bulk.  SQL lives here, rules in ``domain``, the
answers' shapes in ``schemas``; the statement import's own queries are in
``store.statements``, its files in ``store.files``."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import OperationalError

from services.kit import clock
from services.kit.db import table_of
from services.kit.envelope import Envelope
from services.kit.errors import Conflict, NotFound
from services.payments import domain
from services.payments.models import (
    DealBudget,
    PlannedPayment,
    Receipt,
)

if TYPE_CHECKING:
    from services.kit.dependencies import Work

CHUNK = 1000


def now() -> datetime:
    return clock.now()


def lock_payment(work: Work, payment_id: Any, config: Any) -> PlannedPayment:
    """The planned payment, locked.  A statement import holds the rows it pays until it
    commits; rather than hang, give up after LOCK_TIMEOUT_MS with a Conflict."""
    payment_id = domain.identifier(payment_id, "payment_id")
    timeout = int(config.get("LOCK_TIMEOUT_MS") or 3000)
    work.execute(text(f"SET LOCAL lock_timeout = {timeout}"))
    try:
        payment = work.scalars(select(PlannedPayment).where(PlannedPayment.id == payment_id)
                               .with_for_update()).first()
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", "") == "55P03":  # lock_not_available
            raise Conflict(f"payment {payment_id} is being changed (a statement import?); "
                           "try again in a moment", field="payment_id") from None
        raise
    if payment is None:
        raise NotFound(f"planned payment {payment_id} not found", entity="payment",
                       id=payment_id)
    return payment


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- events in bulk ------------------------------------------------------------------------


def emit_many(work: Work, events: Iterable[tuple[str, dict[str, Any]]]) -> int:
    """Many events into the outbox in a few multi-row INSERTs (an import may raise tens of
    thousands); the same envelope and relay as ``work.emit``."""
    outbox = work.provider.outbox
    stack = getattr(work.worker_ctx, "call_id_stack", None)
    call_id = stack[-1] if stack else None
    rows = []
    for type_, data in events:
        envelope = Envelope.new(type_, data)
        rows.append({"event_id": envelope.event_id, "type": envelope.type,
                     "version": envelope.version,
                     "occurred_at": datetime.fromisoformat(envelope.occurred_at),
                     "data": envelope.data, "call_id": call_id})
    for part in chunks(rows, 2000):
        work.session.execute(outbox.insert(), list(part))
    work.emitted += len(rows)
    return len(rows)


# --- receipts --------------------------------------------------------------------------------


def record_receipt(work: Work, payment: PlannedPayment, amount: Decimal, received_on: date,
                   source: str, user_id: int | None, *, bank_transaction_id: int | None = None,
                   external_id: str | None = None, comment: str | None = None) -> Receipt:
    """Money received against a (locked) planned payment: the receipt, the payment's new
    state and one ``payment_received``.  The caller publishes the deal's budget."""
    receipt = Receipt(planned_payment_id=payment.id, deal_id=payment.deal_id, amount=amount,
                      currency=payment.currency, received_on=received_on, source=source,
                      status="active", comment=comment, bank_transaction_id=bank_transaction_id,
                      external_id=external_id, created_by=user_id)
    work.add(receipt)
    set_received(payment, payment.received_amount + amount, user_id)
    work.flush()
    work.emit("payment_received", received_event(receipt, user_id))
    return receipt


def received_event(r: Receipt, user_id: int | None) -> dict[str, Any]:
    return {"receipt_id": r.id, "payment_id": r.planned_payment_id, "deal_id": r.deal_id,
            "amount": r.amount, "currency": r.currency, "received_on": r.received_on,
            "source": r.source, "user_id": user_id}


def set_received(payment: PlannedPayment, received: Decimal, user_id: int | None) -> None:
    payment.received_amount = received
    if payment.status != "cancelled":
        payment.status = domain.payment_status(payment.amount, received)
    payment.outstanding = domain.outstanding_of(payment.amount, received, payment.status)
    payment.version += 1
    payment.updated_by = user_id
    payment.updated_at = now()


# --- budgets ---------------------------------------------------------------------------------

_PLAN_OF_DEALS = text(
    "SELECT deal_id, amount, received_amount, status, currency FROM planned_payments "
    "WHERE deal_id = ANY(:ids)")


_UPDATE_BUDGETS = text("""
UPDATE deal_budgets b SET budget = v.budget, currency = v.currency, revision = v.revision
FROM unnest(CAST(:ids AS bigint[]), CAST(:budgets AS numeric[]), CAST(:currencies AS text[]),
            CAST(:revisions AS integer[])) AS v(deal_id, budget, currency, revision)
WHERE b.deal_id = v.deal_id""")


# The same as the loop below for many deals at once (a statement import touches tens of
# thousands): ``domain.totals`` in SQL, one ``budget_changed`` per deal in deal order.
_LOCK_BUDGETS = text("""
INSERT INTO deal_budgets (deal_id, budget, currency, revision)
SELECT i, 0, 'RUB', 0 FROM unnest(CAST(:ids AS bigint[])) AS i ON CONFLICT DO NOTHING""")
_SELECT_FOR_UPDATE = text("""
SELECT deal_id FROM deal_budgets WHERE deal_id = ANY(:ids) ORDER BY deal_id FOR UPDATE""")
_PUBLISH_BUDGETS = text("""
WITH plan AS (
    SELECT deal_id,
        coalesce(sum(amount) FILTER (WHERE status <> 'cancelled'), 0) AS budget,
        coalesce(sum(received_amount) FILTER (WHERE status <> 'cancelled'), 0) AS paid,
        coalesce(sum(greatest(amount - received_amount, 0))
                 FILTER (WHERE status <> 'cancelled'), 0) AS outstanding,
        (array_agg(currency ORDER BY id) FILTER (WHERE status <> 'cancelled'))[1] AS currency
    FROM planned_payments WHERE deal_id = ANY(:ids) GROUP BY deal_id
), changed AS (
    UPDATE deal_budgets b SET budget = coalesce(plan.budget, 0),
        currency = coalesce(plan.currency, b.currency), revision = b.revision + 1
    FROM unnest(CAST(:ids AS bigint[])) AS i(deal_id)
    LEFT JOIN plan ON plan.deal_id = i.deal_id
    WHERE b.deal_id = i.deal_id
    RETURNING b.deal_id, b.budget, coalesce(plan.paid, 0) AS paid,
        coalesce(plan.outstanding, 0) AS outstanding, b.currency, b.revision
)
INSERT INTO outbox (event_id, type, version, occurred_at, data, call_id)
SELECT gen_random_uuid(), 'budget_changed', 1, now(), jsonb_build_object(
    'deal_id', deal_id, 'budget', CAST(CAST(budget AS numeric(18, 2)) AS text),
    'paid', CAST(CAST(paid AS numeric(18, 2)) AS text),
    'outstanding', CAST(CAST(outstanding AS numeric(18, 2)) AS text),
    'currency', currency, 'revision', revision, 'user_id', CAST(:user_id AS integer)),
    :call_id
FROM changed ORDER BY deal_id""")
BULK_BUDGETS = 50


def publish_budgets(work: Work, deal_ids: Iterable[int], user_id: int | None) -> int:
    """Recompute the budget of each deal from its plan and publish ``budget_changed`` with
    the next revision.  Budget rows are locked in deal order, so concurrent changes of one
    deal publish revisions in the order they commit."""
    ids = sorted({int(i) for i in deal_ids})
    if len(ids) >= BULK_BUDGETS:
        work.flush()
        stack = getattr(work.worker_ctx, "call_id_stack", None)
        for part in chunks(ids, 20_000):
            params = {"ids": list(part), "user_id": user_id,
                      "call_id": stack[-1] if stack else None}
            work.session.execute(_LOCK_BUDGETS, params)
            work.session.execute(_SELECT_FOR_UPDATE, params)
            work.session.execute(_PUBLISH_BUDGETS, params)
        work.emitted += len(ids)
        return len(ids)
    table = table_of(DealBudget)
    work.flush()
    published = 0
    for part in chunks(ids):
        work.session.execute(pg_insert(table).values(
            [{"deal_id": i, "budget": domain.ZERO, "currency": "RUB", "revision": 0}
             for i in part]).on_conflict_do_nothing())
        budgets = {row.deal_id: row for row in work.session.execute(
            select(table).where(table.c.deal_id.in_(part)).order_by(table.c.deal_id)
            .with_for_update())}
        plans: dict[int, list[tuple[Decimal, Decimal, str, str]]] = defaultdict(list)
        for deal_id, amount, received, status, currency in work.session.execute(
                _PLAN_OF_DEALS, {"ids": list(part)}):
            plans[deal_id].append((amount, received, status, currency))
        events, updates = [], []
        for deal_id in part:
            plan = plans.get(deal_id, [])
            totals = domain.totals([(a, r, s) for a, r, s, _ in plan])
            live = [c for _, _, s, c in plan if s != "cancelled"]
            currency = live[0] if live else budgets[deal_id].currency
            revision = budgets[deal_id].revision + 1
            updates.append((deal_id, totals["budget"], currency, revision))
            events.append(("budget_changed", {
                "deal_id": deal_id, "budget": totals["budget"], "paid": totals["paid"],
                "outstanding": totals["outstanding"], "currency": currency,
                "revision": revision, "user_id": user_id}))
        ids_, amounts, currencies, revisions = zip(*updates, strict=True)
        work.session.execute(_UPDATE_BUDGETS, {
            "ids": list(ids_), "budgets": list(amounts), "currencies": list(currencies),
            "revisions": list(revisions)})
        if len(ids) == 1:
            work.emit(*events[0])
        else:  # a chunk at a time: an import may touch tens of thousands of deals
            emit_many(work, events)
        published += len(events)
    return published
