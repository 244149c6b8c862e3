"""What the payments entry points share: the local date, and locking a planned payment
without waiting forever."""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from services.kit import clock
from services.kit.errors import Conflict, NotFound
from services.payments import domain
from services.payments.models import PlannedPayment


class ServiceBase:
    db: Any
    config: Any

    def _today(self) -> date:
        """Today where the business is (TIMEZONE, default Europe/Moscow): what "overdue"
        and "in the future" mean."""
        return clock.business_today(self.config)

    def _lock_payment(self, payment_id: Any) -> PlannedPayment:
        """The planned payment, locked.  A statement import holds the rows it pays until it
        commits; rather than hang, give up after LOCK_TIMEOUT_MS with a Conflict."""
        payment_id = domain.identifier(payment_id, "payment_id")
        timeout = int(self.config.get("LOCK_TIMEOUT_MS") or 3000)
        self.db.execute(text(f"SET LOCAL lock_timeout = {timeout}"))
        try:
            payment = self.db.scalars(select(PlannedPayment)
                                      .where(PlannedPayment.id == payment_id)
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
