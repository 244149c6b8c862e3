"""Money is Decimal in code and a string in JSON; never a float."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from services.kit.errors import ValidationError

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999999999.99")  # NUMERIC(18,2)


def parse_money(value: object, field: str = "amount", *, allow_negative: bool = False) -> Decimal:
    """Parse a user- or file-supplied amount ("1 234,50", "1234.5", 1234) to a Decimal.

    Floats are refused: they have already lost the cents.
    """
    if isinstance(value, (bool, float)):
        raise ValidationError(f"{field}: amount must be given as a string or integer", field=field)
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise ValidationError(f"{field}: '{value}' is not an amount", field=field) from None
    else:
        raise ValidationError(f"{field}: amount is required", field=field)
    if not amount.is_finite():
        raise ValidationError(f"{field}: '{value}' is not an amount", field=field)
    if amount != amount.quantize(CENT):
        raise ValidationError(f"{field}: at most two decimal places", field=field)
    if amount < 0 and not allow_negative:
        raise ValidationError(f"{field}: must not be negative", field=field)
    if abs(amount) > MAX_AMOUNT:
        raise ValidationError(f"{field}: too large", field=field)
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def money_str(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount.quantize(CENT))
