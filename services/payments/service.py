"""Payments service: payment plans, receipts, budgets (MISSION P1–P6)."""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from services.kit.dependencies import CallLog, UnitOfWork
from services.kit.entrypoints import rpc
from services.kit.errors import NotFound, ValidationError
from services.kit.money import parse_money
from services.kit.service import HealthCheck
from services.payments import domain, models
from services.payments.models import DealBudget, PlannedPayment, Receipt


def payment_dict(p: PlannedPayment) -> dict[str, Any]:
    return {"id": p.id, "deal_id": p.deal_id, "amount": p.amount, "currency": p.currency,
            "due_date": p.due_date, "comment": p.comment, "received_amount": p.received_amount,
            "outstanding": max(p.amount - p.received_amount, domain.ZERO), "status": p.status,
            "overdue": p.status in ("planned", "partial") and p.due_date < date.today(),
            "version": p.version}


def receipt_dict(r: Receipt) -> dict[str, Any]:
    return {"id": r.id, "planned_payment_id": r.planned_payment_id, "deal_id": r.deal_id,
            "amount": r.amount, "currency": r.currency, "received_on": r.received_on,
            "source": r.source, "created_at": r.created_at, "created_by": r.created_by}


class PaymentsService(HealthCheck):
    name = "payments"

    db = UnitOfWork(models.metadata)
    calls = CallLog()

    def _payment(self, payment_id: int) -> PlannedPayment:
        payment = self.db.scalars(select(PlannedPayment).where(PlannedPayment.id == int(payment_id))
                                  .with_for_update()).first()
        if payment is None:
            raise NotFound(f"planned payment {payment_id} not found", entity="payment",
                           id=payment_id)
        return payment

    def _publish_budget(self, deal_id: int, user_id: int | None) -> None:
        budget_row = self.db.scalars(select(DealBudget).where(DealBudget.deal_id == deal_id)
                                     .with_for_update()).first()
        if budget_row is None:
            budget_row = DealBudget(deal_id=deal_id, budget=domain.ZERO, revision=0)
            self.db.add(budget_row)
        self.db.flush()
        rows = self.db.execute(select(PlannedPayment.amount, PlannedPayment.received_amount,
                                      PlannedPayment.status)
                               .where(PlannedPayment.deal_id == deal_id)).all()
        totals = domain.totals([tuple(r) for r in rows])
        budget_row.budget = totals["budget"]
        budget_row.revision += 1
        self.db.emit("budget_changed", {"deal_id": deal_id, "budget": totals["budget"],
                                        "paid": totals["paid"],
                                        "outstanding": totals["outstanding"],
                                        "currency": budget_row.currency,
                                        "revision": budget_row.revision, "user_id": user_id})

    @rpc
    def add_planned_payment(self, deal_id: int, data: dict[str, Any],
                            user_id: int | None = None) -> dict[str, Any]:
        cleaned = domain.validate_planned_payment(data)
        payment = PlannedPayment(deal_id=int(deal_id), created_by=user_id, **cleaned)
        self.db.add(payment)
        self.db.flush()
        self._publish_budget(payment.deal_id, user_id)
        return payment_dict(payment)

    @rpc
    def mark_received(self, payment_id: int, data: dict[str, Any],
                      user_id: int | None = None) -> dict[str, Any]:
        payment = self._payment(payment_id)
        if payment.status == "cancelled":
            raise ValidationError("payment: a cancelled payment cannot be received",
                                  field="payment_id")
        outstanding = max(payment.amount - payment.received_amount, domain.ZERO)
        amount = (parse_money(data["amount"], "amount") if data.get("amount") not in (None, "")
                  else outstanding)
        if amount <= domain.ZERO:
            raise ValidationError("amount: the received amount must be more than zero",
                                  field="amount")
        received_on = (domain.parse_date(data["received_on"], "received_on")
                       if data.get("received_on") else date.today())
        receipt = Receipt(planned_payment_id=payment.id, deal_id=payment.deal_id, amount=amount,
                          currency=payment.currency, received_on=received_on,
                          source=data.get("source", "manual"), created_by=user_id)
        self.db.add(receipt)
        payment.received_amount += amount
        payment.status = domain.payment_status(payment.amount, payment.received_amount)
        payment.version += 1
        self.db.flush()
        self.db.emit("payment_received", {"receipt_id": receipt.id, "payment_id": payment.id,
                                          "deal_id": payment.deal_id, "amount": amount,
                                          "currency": payment.currency,
                                          "received_on": received_on, "source": receipt.source,
                                          "user_id": user_id})
        self._publish_budget(payment.deal_id, user_id)
        return {"payment": payment_dict(payment), "receipt": receipt_dict(receipt)}

    @rpc
    def deal_payments(self, deal_id: int) -> dict[str, Any]:
        payments = self.db.scalars(select(PlannedPayment).where(PlannedPayment.deal_id == int(deal_id))
                                   .order_by(PlannedPayment.due_date, PlannedPayment.id)).all()
        receipts = self.db.scalars(select(Receipt).where(Receipt.deal_id == int(deal_id))
                                   .order_by(Receipt.received_on, Receipt.id)).all()
        totals = domain.totals([(p.amount, p.received_amount, p.status) for p in payments])
        return {"deal_id": int(deal_id), "payments": [payment_dict(p) for p in payments],
                "receipts": [receipt_dict(r) for r in receipts], **totals}
