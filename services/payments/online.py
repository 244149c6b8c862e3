"""Entry points of online payment (P6): send a payer to the payment provider for what is
outstanding, and record the provider's notification as a receipt, once."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.kit import clock
from services.kit.entrypoints import rpc
from services.kit.errors import Conflict, NotFound, ValidationError
from services.payments import domain, schemas, store
from services.payments.models import Receipt
from services.payments.provider import ProviderClient


class OnlineEntrypoints:
    db: Any
    config: Any

    @rpc
    def start_online_payment(self, payment_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Create the provider's payment for what is still outstanding on a planned payment
        and give the URL to send the payer to; the provider's webhook records it later.
        ``data``: `return_url`, `description`, `idempotence_key` (the same key, the same
        provider payment)."""
        if not isinstance(data, dict):
            raise ValidationError("Нужен объект JSON.", field="data", key="object.invalid")
        payment = store.lock_payment(self.db, payment_id, self.config)
        if payment.status in ("paid", "cancelled") or payment.outstanding <= 0:
            raise Conflict(f"payment {payment.id} is {payment.status}: nothing to pay",
                           field="payment_id", key="payment.nothing_to_pay")
        return_url, key = data.get("return_url"), data.get("idempotence_key")
        if not isinstance(return_url, str) or not return_url.startswith(("http://", "https://")):
            raise ValidationError("Нужен адрес http(s).", field="return_url",
                                  key="reconcile.return_url")
        if not isinstance(key, str) or not 1 <= len(key) <= 64:
            raise ValidationError("Ключ идемпотентности: от 1 до 64 символов.",
                                  field="idempotence_key", key="reconcile.idempotence_key")
        created = ProviderClient.from_config(self.config).create_payment({
            "amount": {"value": f"{payment.outstanding:.2f}", "currency": payment.currency},
            "capture": True,
            "confirmation": {"type": "redirect", "return_url": return_url},
            "description": str(data.get("description") or f"Платёж {payment.id}")[:128],
            "metadata": {"payment_id": str(payment.id)}}, key)
        return {"provider_payment_id": created["id"], "status": created.get("status"),
                "confirmation_url": created["confirmation"]["confirmation_url"],
                "amount": payment.outstanding, "currency": payment.currency}

    @rpc
    def online_payment_notification(self, body: Any) -> dict[str, Any]:
        """A payment provider's webhook (YooKassa ``payment.succeeded``), checked by asking
        the provider's API about the payment; records one receipt (source "online") per
        provider payment — a repeated notification changes nothing."""
        notice = domain.parse_notification(body)
        if notice.event != "payment.succeeded":
            return {"status": "ignored", "event": notice.event}
        existing = self._online_receipt(notice.provider_id)
        if existing is not None:
            return {"status": "duplicate", "receipt": schemas.receipt_dict(existing)}
        verified = domain.verified_payment(
            ProviderClient.from_config(self.config).payment(notice.provider_id),
            notice.provider_id)
        try:
            payment = store.lock_payment(self.db, verified.payment_id, self.config)
        except NotFound:
            raise ValidationError(f"Планового платежа №{verified.payment_id} нет.",
                                  field="object.metadata.payment_id",
                                  key="reconcile.payment_unknown",
                                  params={"payment_id": verified.payment_id}) from None
        existing = self._online_receipt(notice.provider_id)  # a twin waited on the lock
        if existing is not None:
            return {"status": "duplicate", "receipt": schemas.receipt_dict(existing)}
        if payment.status == "cancelled":
            raise ValidationError(f"Платёж №{payment.id} отменён.",
                                  field="object.metadata.payment_id",
                                  key="reconcile.payment_cancelled",
                                  params={"payment_id": payment.id})
        if verified.currency != payment.currency:
            raise ValidationError(f"Платёж №{payment.id} в {payment.currency}, "
                                  f"а оплата в {verified.currency}.",
                                  field="object.amount.currency", key="reconcile.currency",
                                  params={"payment_id": payment.id,
                                          "payment_currency": payment.currency,
                                          "currency": verified.currency})
        today = clock.business_today(self.config)
        received_on = min(verified.paid_on or today, today)
        receipt = store.record_receipt(self.db, payment, verified.amount, received_on,
                                       "online", None, external_id=notice.provider_id)
        store.publish_budgets(self.db, [payment.deal_id], None)
        return {"status": "recorded", "receipt": schemas.receipt_dict(receipt)}

    def _online_receipt(self, provider_id: str) -> Receipt | None:
        return self.db.scalars(select(Receipt).where(Receipt.source == "online",
                                                     Receipt.external_id == provider_id)
                               ).first()
