"""Pure rules of notifications: what to tell whom."""
from __future__ import annotations

from decimal import Decimal
from typing import Any


def format_amount(amount: str, currency: str = "RUB") -> str:
    """'1234567.5' -> '1 234 567,50 ₽' as Russian users read money."""
    value = Decimal(amount).quantize(Decimal("0.01"))
    whole, cents = f"{value:,.2f}".split(".")
    symbol = {"RUB": "₽", "USD": "$", "EUR": "€"}.get(currency, currency)
    return f"{whole.replace(',', ' ')},{cents} {symbol}"


def payment_received_notice(data: dict[str, Any], deal_name: str) -> dict[str, str]:
    amount = format_amount(str(data["amount"]), str(data.get("currency", "RUB")))
    return {"kind": "payment_received",
            "title": f"Поступила оплата {amount}",
            "body": f"Сделка «{deal_name}»: получено {amount} ({data.get('received_on', '')}).",
            "link": f"/deals/{data['deal_id']}"}
