"""Persistence shared by the entry points and the statement import: receipts, budgets,
events in bulk, the views the RPC answers with.  SQL lives here, rules in ``domain``."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.kit import clock
from services.kit.db import table_of
from services.kit.envelope import Envelope
from services.payments import domain
from services.payments.models import (
    BankTransaction,
    DealBudget,
    DueDateMove,
    PlannedPayment,
    Receipt,
    ReceiptCorrection,
)

if TYPE_CHECKING:
    from services.kit.dependencies import Work

CHUNK = 1000


def now() -> datetime:
    return clock.now()


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


# --- views -----------------------------------------------------------------------------------


def move_dict(m: DueDateMove) -> dict[str, Any]:
    return {"id": m.id, "from": m.old_due_date, "to": m.new_due_date, "reason": m.reason,
            "moved_by": m.moved_by, "moved_at": m.moved_at}


def payment_dict(p: PlannedPayment, today: date, moves: list[DueDateMove] | None = None,
                 ) -> dict[str, Any]:
    overdue = domain.is_overdue(p.status, p.due_date, today)
    return {"id": p.id, "deal_id": p.deal_id, "amount": p.amount, "currency": p.currency,
            "due_date": p.due_date, "comment": p.comment,
            "invoice_number": p.invoice_number, "contract_number": p.contract_number,
            "received_amount": p.received_amount,
            "outstanding": domain.outstanding_of(p.amount, p.received_amount, p.status),
            "credit": max(p.received_amount - p.amount, domain.ZERO),
            "status": p.status, "cancel_reason": p.cancel_reason, "overdue": overdue,
            "days_overdue": (today - p.due_date).days if overdue else 0,
            "version": p.version, "moves": [move_dict(m) for m in moves or []]}


def receipt_dict(r: Receipt) -> dict[str, Any]:
    return {"id": r.id, "planned_payment_id": r.planned_payment_id, "deal_id": r.deal_id,
            "amount": r.amount, "currency": r.currency, "received_on": r.received_on,
            "source": r.source, "status": r.status, "comment": r.comment,
            "bank_transaction_id": r.bank_transaction_id, "external_id": r.external_id,
            "created_at": r.created_at, "created_by": r.created_by}


def correction_dict(c: ReceiptCorrection) -> dict[str, Any]:
    return {"id": c.id, "receipt_id": c.receipt_id, "kind": c.kind,
            "old_amount": c.old_amount, "new_amount": c.new_amount,
            "old_received_on": c.old_received_on, "new_received_on": c.new_received_on,
            "reason": c.reason, "created_by": c.created_by, "created_at": c.created_at}


def transaction_dict(t: BankTransaction) -> dict[str, Any]:
    return {"id": t.id, "import_id": t.import_id, "own_account": t.own_account,
            "booked_on": t.booked_on, "number": t.number, "amount": t.amount,
            "currency": t.currency, "direction": t.direction, "reversal": t.reversal,
            "payer_name": t.payer_name, "payer_inn": t.payer_inn,
            "payer_account": t.payer_account, "payee_name": t.payee_name,
            "purpose": t.purpose, "entry_ref": t.entry_ref, "location": t.location,
            "status": t.status, "score": t.score, "reasons": t.reasons or [],
            "candidates": t.candidates or [], "suggested_payment_id": t.suggested_payment_id,
            "note": t.note, "resolved_by": t.resolved_by, "resolved_at": t.resolved_at}


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
