"""Entry points of what is due (P3, P5): overdue payments for the cards, lists and the
daily notice, payments due in a period, and the cash-flow forecast."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from services.kit import clock
from services.kit.entrypoints import rpc
from services.kit.errors import ValidationError
from services.kit.timer import every
from services.payments import domain, schemas
from services.payments.domain import page_args
from services.payments.models import OPEN, ClientRef, DealRef, PlannedPayment, Receipt

OVERDUE_BATCH = 500
MAX_DEALS = 1000


class OverdueEntrypoints:
    db: Any
    config: Any

    # ------------------------------------------------------------------ overdue
    @rpc
    def overdue_by_deal(self, deal_ids: list[int]) -> dict[str, Any]:
        """For kanban cards and deal lists: {deal_id: {count, amount, currency,
        oldest_due_date, days}} of the deals that have overdue payments."""
        if not isinstance(deal_ids, (list, tuple)):
            raise ValidationError("Нужен список номеров сделок.", field="deal_ids",
                                  key="list.invalid")
        if len(deal_ids) > MAX_DEALS:
            raise ValidationError(f"Не больше {MAX_DEALS} сделок за раз.", field="deal_ids",
                                  key="list.too_long", params={"max": MAX_DEALS})
        ids = sorted({domain.identifier(i, "deal_ids") for i in deal_ids})
        if not ids:
            return {}
        today = clock.business_today(self.config)
        rows = self.db.execute(
            select(PlannedPayment.deal_id, PlannedPayment.currency, func.count(),
                   func.sum(PlannedPayment.outstanding), func.min(PlannedPayment.due_date))
            .where(PlannedPayment.deal_id.in_(ids), PlannedPayment.status.in_(OPEN),
                   PlannedPayment.due_date < today)
            .group_by(PlannedPayment.deal_id, PlannedPayment.currency)).all()
        return {str(deal_id): {"count": count, "amount": amount, "currency": currency,
                               "oldest_due_date": oldest, "days": (today - oldest).days}
                for deal_id, currency, count, amount, oldest in rows}

    @rpc
    def overdue_payments(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        """Overdue planned payments, oldest first, with deal, client and manager (for the
        accountant and the head of sales); ``manager_id`` filters."""
        query, page, per_page = page_args(query)
        today = clock.business_today(self.config)
        where = [PlannedPayment.status.in_(OPEN), PlannedPayment.due_date < today]
        if query.get("manager_id") not in (None, ""):
            where.append(DealRef.manager_id == domain.identifier(query["manager_id"],
                                                                 "manager_id"))
        stmt = (select(PlannedPayment, DealRef.name, DealRef.manager_id, ClientRef.name,
                       ClientRef.client_id)
                .outerjoin(DealRef, DealRef.deal_id == PlannedPayment.deal_id)
                .outerjoin(ClientRef, ClientRef.client_id == DealRef.client_id).where(*where))
        sums = self.db.execute(
            select(PlannedPayment.currency, func.count(), func.sum(PlannedPayment.outstanding))
            .outerjoin(DealRef, DealRef.deal_id == PlannedPayment.deal_id).where(*where)
            .group_by(PlannedPayment.currency)).all()
        total = sum(count for _, count, _ in sums)
        amounts = {currency: amount for currency, _, amount in sums}
        rows = self.db.execute(stmt.order_by(PlannedPayment.due_date, PlannedPayment.id)
                               .offset((page - 1) * per_page).limit(per_page)).all()
        items = []
        for p, deal_name, manager_id, client_name, client_id in rows:
            item = schemas.payment_dict(p, today)
            item.update(deal_name=deal_name, manager_id=manager_id, client_name=client_name,
                        client_id=client_id)
            items.append(item)
        return {"items": items, "total": total, "page": page, "per_page": per_page,
                "amounts": dict(amounts)}

    @rpc
    def due_payments(self, date_from: str, date_to: str, manager_id: int | None = None,
                     limit: int = 500) -> list[dict[str, Any]]:
        """Open planned payments due between two days (inclusive), soonest first, with the
        deal and client names: the calendar of the "my tasks" page."""
        start = domain.parse_date(date_from, "date_from")
        end = domain.parse_date(date_to, "date_to")
        if end < start:
            raise ValidationError("date_to: before date_from", field="date_to",
                                  key="period.end_before_start",
                                  params={"start": str(start), "end": str(end)})
        where = [PlannedPayment.status.in_(OPEN), PlannedPayment.due_date >= start,
                 PlannedPayment.due_date <= end]
        if manager_id is not None:
            where.append(DealRef.manager_id == domain.identifier(manager_id, "manager_id"))
        rows = self.db.execute(
            select(PlannedPayment, DealRef.name, DealRef.manager_id, ClientRef.name)
            .outerjoin(DealRef, DealRef.deal_id == PlannedPayment.deal_id)
            .outerjoin(ClientRef, ClientRef.client_id == DealRef.client_id).where(*where)
            .order_by(PlannedPayment.due_date, PlannedPayment.id)
            .limit(max(1, min(int(limit), 2000)))).all()
        today = clock.business_today(self.config)
        items = []
        for p, deal_name, manager, client_name in rows:
            item = schemas.payment_dict(p, today)
            item.update(deal_name=deal_name, manager_id=manager, client_name=client_name)
            items.append(item)
        return items

    @every("OVERDUE_CHECK_SECONDS", 60.0)
    def announce_overdue(self) -> int:
        """Publish ``payment_overdue`` once per payment and due date that passed (a moved
        due date can go overdue again).  Rows are claimed with SKIP LOCKED, so replicas
        share the work and never repeat it."""
        today = clock.business_today(self.config)
        claimed = self.db.execute(
            select(PlannedPayment, DealRef.manager_id)
            .outerjoin(DealRef, DealRef.deal_id == PlannedPayment.deal_id)
            .where(PlannedPayment.status.in_(OPEN), PlannedPayment.due_date < today,
                   PlannedPayment.overdue_notified_due.is_distinct_from(
                       PlannedPayment.due_date))
            .order_by(PlannedPayment.due_date, PlannedPayment.id).limit(OVERDUE_BATCH)
            .with_for_update(of=PlannedPayment, skip_locked=True)).all()
        for payment, manager_id in claimed:
            payment.overdue_notified_due = payment.due_date
            self.db.emit("payment_overdue", {
                "payment_id": payment.id, "deal_id": payment.deal_id,
                "amount": payment.outstanding, "currency": payment.currency,
                "due_date": payment.due_date, "manager_id": manager_id,
                "days_overdue": (today - payment.due_date).days})
        self.db.commit()
        return len(claimed)

    # ------------------------------------------------------------------ forecast
    @rpc
    def forecast(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        """Expected receipts by due date for the coming days/weeks/months, overall and per
        manager, overdue apart, and what was received beside it (P3)."""
        q = domain.validate_forecast_query(query if isinstance(query, dict) else {})
        today = clock.business_today(self.config)
        window = domain.periods(today, q["granularity"], q["periods"], q["past"])
        manager = DealRef.manager_id
        open_stmt = (select(PlannedPayment.due_date, manager, func.sum(PlannedPayment.outstanding))
                     .outerjoin(DealRef, DealRef.deal_id == PlannedPayment.deal_id)
                     .where(PlannedPayment.status.in_(OPEN),
                            PlannedPayment.currency == q["currency"])
                     .group_by(PlannedPayment.due_date, manager))
        received_stmt = (select(Receipt.received_on, manager, func.sum(Receipt.amount))
                         .outerjoin(DealRef, DealRef.deal_id == Receipt.deal_id)
                         .where(Receipt.status == "active", Receipt.currency == q["currency"],
                                Receipt.received_on >= window[0].start,
                                Receipt.received_on <= today)
                         .group_by(Receipt.received_on, manager))
        if q["manager_id"] is not None:
            open_stmt = open_stmt.where(manager == q["manager_id"])
            received_stmt = received_stmt.where(manager == q["manager_id"])
        result = domain.forecast(self.db.execute(open_stmt).all(),
                                 self.db.execute(received_stmt).all(), today, window)
        currencies = sorted(set(self.db.scalars(
            select(PlannedPayment.currency).where(PlannedPayment.status.in_(OPEN)).distinct()))
            | {q["currency"]})
        return {**result, "granularity": q["granularity"], "currency": q["currency"],
                "manager_id": q["manager_id"], "currencies": currencies}
