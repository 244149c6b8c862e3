"""Entry points of the review queue (P4): the bank transactions a statement import could
not match with confidence, and a person's decision on each (confirm, split, dismiss)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from services.kit import clock
from services.kit.entrypoints import rpc
from services.kit.errors import Conflict, NotFound, ValidationError
from services.payments import domain, schemas, store
from services.payments.domain import page_args
from services.payments.models import BankTransaction, ClientRef, DealRef, PlannedPayment, Receipt

QUEUE_STATUSES = ("review", "unmatched")


class ReconciliationEntrypoints:
    db: Any
    config: Any

    @rpc
    def review_queue(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        """Transactions waiting for a person: doubtful matches ('review') and credits that
        matched nothing ('unmatched'), with their candidate payments described."""
        query, page, per_page = page_args(query)
        statuses = [query["status"]] if query.get("status") else list(QUEUE_STATUSES)
        if any(s not in QUEUE_STATUSES for s in statuses):
            raise ValidationError("Статус: на проверке или не сопоставлено.", field="status",
                                  key="reconcile.review_status")
        stmt = select(BankTransaction).where(BankTransaction.status.in_(statuses))
        total = self.db.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = self.db.scalars(stmt.order_by(BankTransaction.booked_on, BankTransaction.id)
                               .offset((page - 1) * per_page).limit(per_page)).all()
        counts = dict(self.db.execute(
            select(BankTransaction.status, func.count())
            .where(BankTransaction.status.in_(QUEUE_STATUSES))
            .group_by(BankTransaction.status)).all())
        ids = {int(i) for t in rows for i in (t.candidates or [])}
        described = self._describe_payments(ids)
        items = []
        for t in rows:
            item = schemas.transaction_dict(t)
            item["unallocated"] = self._unallocated(t)
            item["candidate_payments"] = [described[int(i)] for i in (t.candidates or [])
                                          if int(i) in described]
            items.append(item)
        return {"items": items, "total": total, "page": page, "per_page": per_page,
                "counts": {s: int(counts.get(s, 0)) for s in QUEUE_STATUSES}}

    def _describe_payments(self, ids: set[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        rows = self.db.execute(
            select(PlannedPayment, DealRef.name, DealRef.manager_id, ClientRef.name,
                   ClientRef.inn)
            .outerjoin(DealRef, DealRef.deal_id == PlannedPayment.deal_id)
            .outerjoin(ClientRef, ClientRef.client_id == DealRef.client_id)
            .where(PlannedPayment.id.in_(ids))).all()
        today = clock.business_today(self.config)
        found = {}
        for p, deal_name, manager_id, client_name, inn in rows:
            item = schemas.payment_dict(p, today)
            item.update(deal_name=deal_name, manager_id=manager_id, client_name=client_name,
                        client_inn=inn)
            found[p.id] = item
        return found

    def _unallocated(self, t: BankTransaction) -> Any:
        allocated = self.db.scalar(select(func.coalesce(func.sum(Receipt.amount), 0)).where(
            Receipt.bank_transaction_id == t.id, Receipt.status == "active"))
        return t.amount - allocated

    @rpc
    def resolve_transaction(self, transaction_id: int, data: dict[str, Any],
                            user_id: int | None = None) -> dict[str, Any]:
        """A person decides a queued transaction: ``confirm`` it pays ``payment_id``
        (default: the suggested one), ``split`` it over ``allocations``
        [{payment_id, amount}], or ``dismiss`` it (not a client payment) with a ``note``."""
        if not isinstance(data, dict):
            raise ValidationError("Нужен объект JSON.", field="data", key="object.invalid")
        tx = self.db.scalars(select(BankTransaction).where(
            BankTransaction.id == domain.identifier(transaction_id, "transaction_id"))
            .with_for_update()).first()
        if tx is None:
            raise NotFound(f"transaction {transaction_id} not found", entity="transaction",
                           id=transaction_id)
        if tx.status not in QUEUE_STATUSES:
            raise Conflict(f"transaction {tx.id} is {tx.status}, not waiting for a decision",
                           field="transaction_id", status=tx.status)
        action = data.get("action")
        remaining = self._unallocated(tx)
        if action == "dismiss":
            tx.note = domain.required_text(data, "note", "why it is not a client payment", 500)
            tx.status = "dismissed"
        elif action in ("confirm", "split"):
            if action == "confirm":
                chosen = data.get("payment_id") or tx.suggested_payment_id
                if chosen is None:
                    raise ValidationError("Выберите плановый платёж, который оплачен.",
                                          field="payment_id", key="reconcile.payment_required")
                parts = [(domain.identifier(chosen, "payment_id"), remaining)]
            else:
                parts = domain.validate_allocations(data.get("allocations"), remaining)
            self._allocate(tx, parts, user_id)
            tx.status = "resolved"
            tx.note = domain.optional_text(data, "note", 500)
        else:
            raise ValidationError("Действие: подтвердить, разделить или отклонить.",
                                  field="action", key="reconcile.action")
        tx.resolved_by, tx.resolved_at = user_id, clock.now()
        self.db.flush()
        return schemas.transaction_dict(tx)

    def _allocate(self, tx: BankTransaction, parts: list[tuple[int, Any]],
                  user_id: int | None) -> None:
        deals = set()
        for i, (payment_id, amount) in enumerate(sorted(parts)):
            field = "payment_id" if len(parts) == 1 else f"allocations[{i}].payment_id"
            try:
                payment = store.lock_payment(self.db, payment_id, self.config)
            except NotFound:
                raise ValidationError(f"Планового платежа №{payment_id} нет.", field=field,
                                      key="reconcile.payment_unknown",
                                      params={"payment_id": payment_id}) from None
            if payment.status == "cancelled":
                raise ValidationError(f"Платёж №{payment_id} отменён.", field=field,
                                      key="reconcile.payment_cancelled",
                                      params={"payment_id": payment_id})
            if payment.currency != tx.currency:
                raise ValidationError(f"Платёж №{payment_id} в {payment.currency}, "
                                      f"а поступление в {tx.currency}.", field=field,
                                      key="reconcile.currency",
                                      params={"payment_id": payment_id,
                                              "payment_currency": payment.currency,
                                              "currency": tx.currency})
            store.record_receipt(self.db, payment, amount, tx.booked_on, "bank", user_id,
                                 bank_transaction_id=tx.id)
            deals.add(payment.deal_id)
        store.publish_budgets(self.db, deals, user_id)
