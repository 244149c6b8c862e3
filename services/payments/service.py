"""Payments service (MISSION P1–P6): the class and its core entry points, payment plans,
receipts and a deal's payments.  The other parts' entry points, which the class inherits:
``overdue`` (overdue, due, the forecast), ``statements`` (bank/1C imports), ``reconciliation``
(the review queue), ``online`` (online payment), ``projection`` (deals'/clients' events)."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from nameko.dependency_providers import Config
from sqlalchemy import ColumnElement, or_, select

from services.kit import clock
from services.kit.dependencies import CallLog, Permissions, Remote, UnitOfWork
from services.kit.entrypoints import rpc
from services.kit.errors import Conflict, NotFound, ValidationError
from services.kit.service import HealthCheck
from services.payments import domain, models, schemas, store
from services.payments.models import (
    OPEN,
    BankTransaction,
    ClientRef,
    DealBudget,
    DealRef,
    DueDateMove,
    PlannedPayment,
    Receipt,
    ReceiptCorrection,
)
from services.payments.online import OnlineEntrypoints
from services.payments.overdue import OverdueEntrypoints
from services.payments.projection import ProjectionEntrypoints
from services.payments.reconciliation import ReconciliationEntrypoints
from services.payments.statements import StatementsEntrypoints

OVERDUE_BATCH = 500
MAX_DEALS = 1000


class PaymentsService(OverdueEntrypoints, StatementsEntrypoints, ReconciliationEntrypoints,
                      OnlineEntrypoints, ProjectionEntrypoints, HealthCheck):
    name = "payments"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    config = Config()
    may = Permissions()
    deals = Remote("deals")

    # ------------------------------------------------------------------ who may
    def _deal_manager(self, deal_id: int) -> int | None:
        """The manager of a deal that exists, from the projection of deals' events, or
        from deals itself when its deal_created has not arrived yet; NotFound otherwise
        (docs/decisions: payments checks the deals it is told about)."""
        ref = self.db.get(DealRef, deal_id)
        if ref is not None:
            return ref.manager_id
        try:
            deal = self.deals.get_deal(deal_id)
        except NotFound:
            raise NotFound(f"deal {deal_id} not found", field="deal_id", entity="deal",
                           id=deal_id) from None
        return deal.get("manager_id")

    def _may(self, resource: str, payment: PlannedPayment) -> None:
        """Managers change the money of their own deals; see services/kit/permissions.py."""
        if self.may.actor is not None:
            ref = self.db.get(DealRef, payment.deal_id)
            self.may.check(resource, [ref.manager_id if ref else None],
                           f"payment {payment.id}")

    # ------------------------------------------------------------------ payment plans
    def _deal_currencies(self, deal_id: int, but: int | None = None) -> list[str]:
        stmt = select(PlannedPayment.currency).where(PlannedPayment.deal_id == deal_id,
                                                     PlannedPayment.status != "cancelled")
        if but is not None:
            stmt = stmt.where(PlannedPayment.id != but)
        return list(self.db.scalars(stmt.distinct()))

    def _one(self, payment: PlannedPayment) -> dict[str, Any]:
        moves = list(self.db.scalars(select(DueDateMove).where(
            DueDateMove.payment_id == payment.id).order_by(DueDateMove.id)))
        return schemas.payment_dict(payment, clock.business_today(self.config), moves)

    @rpc
    def add_planned_payment(self, deal_id: int, data: dict[str, Any],
                            user_id: int | None = None) -> dict[str, Any]:
        deal_id = domain.identifier(deal_id, "deal_id")
        cleaned = domain.validate_planned_payment(data)
        self.may.check("payments", [self._deal_manager(deal_id)], f"deal {deal_id}")
        domain.check_currency(cleaned["currency"], self._deal_currencies(deal_id))
        payment = PlannedPayment(deal_id=deal_id, created_by=user_id, received_amount=domain.ZERO,
                                 outstanding=cleaned["amount"], status="planned", version=1,
                                 **cleaned)
        self.db.add(payment)
        self.db.flush()
        store.publish_budgets(self.db, [deal_id], user_id)
        return self._one(payment)

    @rpc
    def add_payment_plan(self, deal_id: int, parts: list[dict[str, Any]],
                         user_id: int | None = None) -> list[dict[str, Any]]:
        """A whole plan in one transaction: every part or none (a deal seeding its plan
        from a calculation; send ``idempotency_key`` so a retry returns the same plan)."""
        deal_id = domain.identifier(deal_id, "deal_id")
        if not isinstance(parts, list) or not parts or len(parts) > 120:
            raise ValidationError("От 1 до 120 платежей.", field="parts", key="parts.range",
                                  params={"min": 1, "max": 120})
        cleaned = []
        for n, part in enumerate(parts):
            try:
                cleaned.append(domain.validate_planned_payment(part))
            except ValidationError as exc:
                raise exc.prefixed(f"parts.{n}") from None
        self.may.check("payments", [self._deal_manager(deal_id)], f"deal {deal_id}")
        currencies = self._deal_currencies(deal_id)
        for one in cleaned:
            domain.check_currency(one["currency"], currencies)
            currencies = currencies or [one["currency"]]
        made = [PlannedPayment(deal_id=deal_id, created_by=user_id, received_amount=domain.ZERO,
                               outstanding=one["amount"], status="planned", version=1, **one)
                for one in cleaned]
        self.db.add_all(made)
        self.db.flush()
        store.publish_budgets(self.db, [deal_id], user_id)
        return [self._one(payment) for payment in made]

    @rpc
    def update_planned_payment(self, payment_id: int, data: dict[str, Any],
                               user_id: int | None = None) -> dict[str, Any]:
        """Change amount, comment or document numbers (``version`` guards lost updates)."""
        payment = store.lock_payment(self.db, payment_id, self.config)
        self._may("payments", payment)
        if isinstance(data, dict) and data.get("version") not in (None, ""):
            if domain.identifier(data["version"], "version") != payment.version:
                raise Conflict(f"payment {payment.id} was changed meanwhile (version "
                               f"{payment.version})", field="version")
            data = {k: v for k, v in data.items() if k != "version"}
        if payment.status == "cancelled":
            raise ValidationError("Отменённый платёж нельзя изменить.", field="payment_id",
                                  key="payment.cancelled")
        changes = domain.validate_payment_changes(data, payment.received_amount)
        for key, value in changes.items():
            setattr(payment, key, value)
        store.set_received(payment, payment.received_amount, user_id)
        store.publish_budgets(self.db, [payment.deal_id], user_id)
        return self._one(payment)

    @rpc
    def cancel_planned_payment(self, payment_id: int, data: dict[str, Any],
                               user_id: int | None = None) -> dict[str, Any]:
        payment = store.lock_payment(self.db, payment_id, self.config)
        self._may("payments", payment)
        domain.check_cancellable(payment.status, payment.received_amount)
        payment.cancel_reason = domain.required_text(data if isinstance(data, dict) else {},
                                                     "reason", "the reason", 500)
        payment.status = "cancelled"
        store.set_received(payment, payment.received_amount, user_id)
        store.publish_budgets(self.db, [payment.deal_id], user_id)
        return self._one(payment)

    @rpc
    def move_due_date(self, payment_id: int, data: dict[str, Any],
                      user_id: int | None = None) -> dict[str, Any]:
        """The client asked for more time: the new due date, with who and why kept."""
        payment = store.lock_payment(self.db, payment_id, self.config)
        self._may("payments", payment)
        if payment.status not in OPEN:
            raise ValidationError("Срок этого платежа уже не переносится: он оплачен или отменён.",
                                  field="payment_id", key="payment.not_due",
                                  params={"status": payment.status})
        new_due, reason = domain.validate_move(data, payment.due_date)
        self.db.add(DueDateMove(payment_id=payment.id, old_due_date=payment.due_date,
                                new_due_date=new_due, reason=reason, moved_by=user_id))
        payment.due_date = new_due
        payment.version += 1
        payment.updated_by, payment.updated_at = user_id, clock.now()
        self.db.flush()
        return self._one(payment)

    # ------------------------------------------------------------------ receipts
    @rpc
    def mark_received(self, payment_id: int, data: dict[str, Any],
                      user_id: int | None = None) -> dict[str, Any]:
        payment = store.lock_payment(self.db, payment_id, self.config)
        self._may("receipts", payment)
        if payment.status == "cancelled":
            raise ValidationError("По отменённому платежу нельзя принять деньги.",
                                  field="payment_id", key="payment.cancelled_receive")
        cleaned = domain.validate_receipt(
            data, domain.outstanding_of(payment.amount, payment.received_amount, payment.status),
            clock.business_today(self.config))
        receipt = store.record_receipt(self.db, payment, cleaned["amount"],
                                       cleaned["received_on"], "manual", user_id,
                                       comment=cleaned["comment"])
        store.publish_budgets(self.db, [payment.deal_id], user_id)
        return {"payment": self._one(payment), "receipt": schemas.receipt_dict(receipt)}

    def _receipt(self, receipt_id: Any) -> tuple[Receipt, PlannedPayment]:
        receipt_id = domain.identifier(receipt_id, "receipt_id")
        planned_id = self.db.scalar(select(Receipt.planned_payment_id)
                                    .where(Receipt.id == receipt_id))
        if planned_id is None:
            raise NotFound(f"receipt {receipt_id} not found", entity="receipt", id=receipt_id)
        # the payment first: the order every path locks in
        payment = store.lock_payment(self.db, planned_id, self.config)
        receipt = self.db.scalars(select(Receipt).where(Receipt.id == receipt_id)
                                  .with_for_update()).one()
        if receipt.status != "active":
            raise Conflict(f"receipt {receipt_id} is already cancelled", field="receipt_id")
        return receipt, payment

    @rpc
    def correct_receipt(self, receipt_id: int, data: dict[str, Any],
                        user_id: int | None = None) -> dict[str, Any]:
        """An accountant corrects a manual receipt's amount or date; the correction is
        recorded beside it (who, when, why, before and after)."""
        receipt, payment = self._receipt(receipt_id)
        self._may("receipts", payment)
        cleaned = domain.validate_correction(data, receipt.amount, receipt.received_on,
                                             receipt.source, clock.business_today(self.config))
        correction = ReceiptCorrection(
            receipt_id=receipt.id, kind="correction", old_amount=receipt.amount,
            new_amount=cleaned["amount"], old_received_on=receipt.received_on,
            new_received_on=cleaned["received_on"], reason=cleaned["reason"],
            created_by=user_id)
        self.db.add(correction)
        delta = cleaned["amount"] - receipt.amount
        receipt.amount, receipt.received_on = cleaned["amount"], cleaned["received_on"]
        store.set_received(payment, payment.received_amount + delta, user_id)
        return self._corrected(receipt, payment, correction, user_id)

    @rpc
    def cancel_receipt(self, receipt_id: int, data: dict[str, Any],
                       user_id: int | None = None) -> dict[str, Any]:
        """An accountant cancels a receipt (recorded, with the reason).  Money from a bank
        transaction goes back to the review queue to be allocated again."""
        receipt, payment = self._receipt(receipt_id)
        self._may("receipts", payment)
        reason = domain.required_text(data if isinstance(data, dict) else {}, "reason",
                                      "the reason for the cancellation", 500)
        correction = ReceiptCorrection(
            receipt_id=receipt.id, kind="cancellation", old_amount=receipt.amount,
            new_amount=domain.ZERO, old_received_on=receipt.received_on,
            new_received_on=receipt.received_on, reason=reason, created_by=user_id)
        self.db.add(correction)
        receipt.status = "cancelled"
        store.set_received(payment, payment.received_amount - receipt.amount, user_id)
        if receipt.bank_transaction_id is not None:
            tx = self.db.get(BankTransaction, receipt.bank_transaction_id,
                             with_for_update=True)
            if tx is not None:
                tx.status = "review"
                tx.reasons = [f"receipt {receipt.id} was cancelled: {reason}",
                              *(tx.reasons or [])]
                tx.resolved_by = tx.resolved_at = None
        return self._corrected(receipt, payment, correction, user_id)

    def _corrected(self, receipt: Receipt, payment: PlannedPayment,
                   correction: ReceiptCorrection, user_id: int | None) -> dict[str, Any]:
        self.db.flush()
        self.db.emit("receipt_corrected", {
            "receipt_id": receipt.id, "payment_id": payment.id, "deal_id": payment.deal_id,
            "kind": correction.kind, "amount": correction.new_amount,
            "previous_amount": correction.old_amount, "currency": receipt.currency,
            "received_on": correction.new_received_on, "reason": correction.reason,
            "user_id": user_id})
        store.publish_budgets(self.db, [payment.deal_id], user_id)
        return {"receipt": schemas.receipt_dict(receipt), "payment": self._one(payment),
                "correction": schemas.correction_dict(correction)}

    # ------------------------------------------------------------------ deal panel
    @rpc
    def deal_payments(self, deal_id: int) -> dict[str, Any]:
        deal_id = domain.identifier(deal_id, "deal_id")
        payments = self.db.scalars(select(PlannedPayment).where(PlannedPayment.deal_id == deal_id)
                                   .order_by(PlannedPayment.due_date, PlannedPayment.id)).all()
        moves: dict[int, list[DueDateMove]] = defaultdict(list)
        if payments:
            for m in self.db.scalars(select(DueDateMove).where(
                    DueDateMove.payment_id.in_([p.id for p in payments])).order_by(DueDateMove.id)):
                moves[m.payment_id].append(m)
        receipts = self.db.scalars(select(Receipt).where(Receipt.deal_id == deal_id)
                                   .order_by(Receipt.received_on, Receipt.id)).all()
        corrections = self.db.scalars(
            select(ReceiptCorrection).join(Receipt, Receipt.id == ReceiptCorrection.receipt_id)
            .where(Receipt.deal_id == deal_id).order_by(ReceiptCorrection.id)).all()
        today = clock.business_today(self.config)
        listed = [schemas.payment_dict(p, today, moves.get(p.id)) for p in payments]
        totals = domain.totals([(p.amount, p.received_amount, p.status) for p in payments])
        budget = self.db.get(DealBudget, deal_id)
        live = [p.currency for p in payments if p.status != "cancelled"]
        return {"deal_id": deal_id, "payments": listed, "payer": self._payer(deal_id),
                "receipts": [schemas.receipt_dict(r) for r in receipts if r.status == "active"],
                "cancelled_receipts": [schemas.receipt_dict(r) for r in receipts
                                       if r.status != "active"],
                "corrections": [schemas.correction_dict(c) for c in corrections],
                "currency": live[0] if live else (budget.currency if budget else "RUB"),
                "revision": budget.revision if budget else 0,
                "overdue": sum((p["outstanding"] for p in listed if p["overdue"]), domain.ZERO),
                **totals}

    def _payer(self, deal_id: int) -> dict[str, Any] | None:
        """What the matcher knows of the deal (from deals' and clients' events): whose
        INN pays it, and its manager.  None until those events have arrived."""
        row = self.db.execute(
            select(DealRef.client_id, DealRef.manager_id, ClientRef.name, ClientRef.inn)
            .outerjoin(ClientRef, ClientRef.client_id == DealRef.client_id)
            .where(DealRef.deal_id == deal_id)).first()
        if row is None:
            return None
        return {"client_id": row[0], "manager_id": row[1], "client_name": row[2],
                "inn": row[3]}

    @rpc
    def find_open_payments(self, text: str, limit: int = 10) -> list[dict[str, Any]]:
        """Open planned payments for a picker: by number, invoice number, or a part of the
        deal's or the client's name; soonest due first, with deal and client names."""
        query = str(text or "").strip().lstrip("#№").strip()[:100]
        if not query:
            return []
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"  # PostgreSQL's LIKE escapes with a backslash
        matches: list[ColumnElement[bool]] = [
            PlannedPayment.invoice_number.ilike(pattern), DealRef.name.ilike(pattern),
                   ClientRef.name.ilike(pattern)]
        if query.isdigit() and len(query) <= 18:
            matches.append(PlannedPayment.id == int(query))
        rows = self.db.execute(
            select(PlannedPayment, DealRef.name, ClientRef.name)
            .outerjoin(DealRef, DealRef.deal_id == PlannedPayment.deal_id)
            .outerjoin(ClientRef, ClientRef.client_id == DealRef.client_id)
            .where(PlannedPayment.status.in_(OPEN), or_(*matches))
            .order_by(PlannedPayment.due_date, PlannedPayment.id)
            .limit(max(1, min(int(limit), 50)))).all()
        today = clock.business_today(self.config)
        return [{**schemas.payment_dict(p, today), "deal_name": deal, "client_name": client}
                for p, deal, client in rows]
