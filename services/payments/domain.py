"""Pure rules of payment plans: no nameko, no SQL."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from services.kit.errors import ValidationError
from services.kit.money import parse_money

ZERO = Decimal("0.00")


def parse_date(value: Any, field: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(f"{field}: '{value}' is not a date (YYYY-MM-DD)", field=field) from None


def validate_planned_payment(data: dict[str, Any]) -> dict[str, Any]:
    amount = parse_money(data.get("amount"), "amount")
    if amount == ZERO:
        raise ValidationError("amount: a planned payment must be more than zero", field="amount")
    currency = str(data.get("currency") or "RUB").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValidationError(f"currency: '{currency}' is not an ISO currency code",
                              field="currency")
    return {"amount": amount, "currency": currency,
            "due_date": parse_date(data.get("due_date"), "due_date"),
            "comment": (data.get("comment") or None)}


def payment_status(amount: Decimal, received: Decimal) -> str:
    if received <= ZERO:
        return "planned"
    return "paid" if received >= amount else "partial"


def totals(payments: list[tuple[Decimal, Decimal, str]]) -> dict[str, Decimal]:
    """Budget, paid, outstanding and credit (overpayment) of a deal from
    (amount, received, status) of its planned payments; cancelled ones do not count."""
    live = [(a, r) for a, r, s in payments if s != "cancelled"]
    budget = sum((a for a, _ in live), ZERO)
    paid = sum((r for _, r in live), ZERO)
    outstanding = sum((max(a - r, ZERO) for a, r in live), ZERO)
    credit = sum((max(r - a, ZERO) for a, r in live), ZERO)
    return {"budget": budget, "paid": paid, "outstanding": outstanding, "credit": credit}
