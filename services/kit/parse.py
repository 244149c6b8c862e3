"""Parsing what crosses the edge: ids, text, dates, money, versions, choices.

Every service and the gateway's schemas use these, so one input is refused the same way
everywhere.  Each parser returns the clean value or raises ``ValidationError`` with the
``field``, a stable ``key`` (rendered by the gateway's catalogs) and its ``params``; the
``message`` is a Russian sentence for logs and callers without catalogs.

The limits are the database's: ids are BIGINT (at most 2^63-1), money is NUMERIC(18,2).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal, overload

from services.kit.errors import ValidationError

MAX_ID = 2**63 - 1
# Keys of the small reference tables (users, statuses, stages, deal types, loss reasons)
# are INTEGER: an id beyond 2^31-1 names nothing and must not reach a query (it would fail
# there as "integer out of range").  A field of one of these names is bounded so.
MAX_SMALL_ID = 2**31 - 1
SMALL_IDS = frozenset({"user_id", "manager_id", "assignee_id", "author_id", "status_id",
                       "type_id", "deal_type_id", "stage_id", "loss_reason_id", "reason_id",
                       "template_id"})


def id_limit(field: str) -> int:
    """The largest id the field can hold: 2^31-1 for the small tables' keys."""
    return MAX_SMALL_ID if field.rsplit(".", 1)[-1] in SMALL_IDS else MAX_ID
CENT = Decimal("0.01")
# One amount stays far inside NUMERIC(18,2), so that budgets, column totals and forecasts
# summing thousands of them never overflow the column that holds the sum.
MAX_AMOUNT = Decimal("999999999999.99")
TEXT_LIMIT = 500
_DIGITS = re.compile(r"[0-9]{1,30}")
_AMOUNT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")


def shown(value: object, limit: int = 40) -> str:
    """The value as a message may quote it: short, without control characters."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(ch if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF else "?"
                   for ch in text[:limit + 1])
    return text if len(text) <= limit else text[:limit] + "…"


def required(field: str) -> ValidationError:
    return ValidationError(f"Поле «{field}» обязательно.", field, key="required")


# ---------------------------------------------------------------------------------- ids

@overload
def identifier(value: object, field: str, *, required: Literal[True] = True,
               limit: int = ...) -> int: ...


@overload
def identifier(value: object, field: str, *, required: bool,
               limit: int = ...) -> int | None: ...


def identifier(value: object, field: str, *, required: bool = True,
               limit: int = 0) -> int | None:
    """A positive whole id up to ``limit`` (default: 2^31-1 for the fields of
    ``SMALL_IDS``, else 2^63-1), from JSON (12) or a form ("12").

    Refused: booleans, floats (1e3, 12.0), signs, spaces inside, anything above BIGINT."""
    if value is None or value == "":
        if required:
            raise _required(field)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _bad_id(value, field)
    limit = limit or id_limit(field)
    raw = value.strip() if isinstance(value, str) else str(value)
    if not _DIGITS.fullmatch(raw):
        if isinstance(value, int) and value > limit:
            raise _big_id(field, limit)
        raise _bad_id(value, field)
    number = int(raw)
    if number <= 0:
        raise _bad_id(value, field)
    if number > limit:
        raise _big_id(field, limit)
    return number


def _bad_id(value: object, field: str) -> ValidationError:
    return ValidationError(f"«{shown(value)}» — не номер записи (нужно целое число больше нуля).",
                           field, key="id.invalid", params={"value": shown(value)})


def _big_id(field: str, limit: int = MAX_ID) -> ValidationError:
    return ValidationError("Слишком большой номер записи.", field, key="id.too_large",
                           params={"max": limit})


def _required(field: str) -> ValidationError:
    return required(field)


@overload
def version(value: object, field: str = ..., *, required: Literal[True]) -> int: ...


@overload
def version(value: object, field: str = ..., *, required: bool = False) -> int | None: ...


def version(value: object, field: str = "version", *, required: bool = False) -> int | None:
    """An optimistic-lock version: a whole number ≥ 1 (None when not sent, if allowed)."""
    try:
        return identifier(value, field, required=required)
    except ValidationError as exc:
        if exc.key == "required":
            raise
        raise ValidationError(f"«{shown(value)}» — не номер версии.", field,
                              key="version.invalid", params={"value": shown(value)}) from None


# --------------------------------------------------------------------------------- text

def check_chars(value: str, field: str) -> str:
    """Refuse text no database column or page can hold: NUL and lone UTF-16 surrogates."""
    if "\x00" in value:
        raise ValidationError("В тексте есть нулевой символ (NUL).", field, key="text.nul")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("В тексте есть недопустимый символ (одиночный суррогат).", field,
                              key="text.surrogate") from None
    return value


def text(value: object, field: str, *, required: bool = True, limit: int = TEXT_LIMIT) -> str:
    """Stripped text; "" when optional and absent.  Numbers are not text."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError("Ожидается текст.", field, key="text.invalid")
    cleaned = check_chars(value, field).strip()
    if required and not cleaned:
        raise _required(field)
    if len(cleaned) > limit:
        raise ValidationError(f"Не больше {limit} символов (сейчас {len(cleaned)}).", field,
                              key="text.too_long", params={"max": limit,
                                                           "length": len(cleaned)})
    return cleaned


def optional_text(value: object, field: str, *, limit: int = TEXT_LIMIT) -> str | None:
    """Stripped text or None when absent or blank."""
    return text(value, field, required=False, limit=limit) or None


def choice(value: object, field: str, options: Iterable[str], *,
           default: str | None = None) -> str:
    """One of ``options`` (an enum sent as text)."""
    allowed = tuple(options)
    if (value is None or value == "") and default is not None:
        return default
    if not isinstance(value, str) or value.strip() not in allowed:
        if value is None or value == "":
            raise _required(field)
        raise ValidationError(f"«{shown(value)}» — не из списка: {', '.join(allowed)}.", field,
                              key="choice.invalid",
                              params={"value": shown(value), "options": ", ".join(allowed)})
    return value.strip()


# -------------------------------------------------------------------------------- dates

@overload
def day(value: object, field: str, *, required: Literal[True] = True) -> date: ...


@overload
def day(value: object, field: str, *, required: bool) -> date | None: ...


def day(value: object, field: str, *, required: bool = True) -> date | None:
    """An ISO date (2026-01-31); a datetime gives its date."""
    if value is None or value == "":
        if required:
            raise _required(field)
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) <= 40:
        try:
            return date.fromisoformat(check_chars(value, field).strip())
        except ValueError:
            pass
    raise ValidationError(f"«{shown(value)}» — не дата (нужно ГГГГ-ММ-ДД, например 2026-01-31).",
                          field, key="date.invalid", params={"value": shown(value)})


def moment(value: object, field: str, default_tz: tzinfo = UTC) -> datetime:
    """An ISO date-time in UTC; one without an offset (an HTML datetime-local) is read in
    ``default_tz``."""
    if value is None or value == "":
        raise _required(field)
    stamp: datetime | None = value if isinstance(value, datetime) else None
    if stamp is None and isinstance(value, str) and len(value) <= 40:
        try:
            stamp = datetime.fromisoformat(check_chars(value, field).strip())
        except ValueError:
            stamp = None
    if stamp is None:
        raise ValidationError(f"«{shown(value)}» — не дата и время "
                              "(нужно, например, 2026-01-31T14:30).", field,
                              key="datetime.invalid", params={"value": shown(value)})
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=default_tz)
    return stamp.astimezone(UTC)


# -------------------------------------------------------------------------------- money

def money(value: object, field: str = "amount", *, allow_negative: bool = False) -> Decimal:
    """An amount as NUMERIC(18,2) holds it: "1 234,50", "1234.5", 1234 or a Decimal.

    Floats are refused (they have already lost the cents), so are exponents ("1e28"),
    NaN, infinities, more than two decimals and anything beyond 999 999 999 999,99
    (so that sums of amounts still fit NUMERIC(18,2))."""
    if value is None or value == "":
        raise _required(field)
    if isinstance(value, (bool, float)):
        raise ValidationError("Сумму нужно передать строкой или целым числом.", field,
                              key="money.float")
    if isinstance(value, int):
        if abs(value) > MAX_AMOUNT:
            raise _too_large(field)
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        raw = value.strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
        raw = raw.replace(",", ".")
        if len(raw) > 40 or not _AMOUNT.fullmatch(raw):
            raise _bad_amount(value, field)
        try:
            amount = Decimal(raw)
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            raise _bad_amount(value, field) from None
    else:
        raise _bad_amount(value, field)
    if not amount.is_finite():
        raise _bad_amount(value, field)
    # Compare before quantizing: quantize of 1e28 itself fails (more than 28 digits).
    if abs(amount) > MAX_AMOUNT:
        raise _too_large(field)
    if amount != amount.quantize(CENT):
        raise ValidationError("Не больше двух знаков после запятой.", field, key="money.places")
    if amount < 0 and not allow_negative:
        raise ValidationError("Сумма не может быть отрицательной.", field, key="money.negative")
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _bad_amount(value: object, field: str) -> ValidationError:
    return ValidationError(f"«{shown(value)}» — не сумма (например, 1 234,50).", field,
                           key="money.invalid", params={"value": shown(value)})


def _too_large(field: str) -> ValidationError:
    return ValidationError("Слишком большая сумма.", field, key="money.too_large",
                           params={"max": str(MAX_AMOUNT)})


def money_str(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount.quantize(CENT))


# ---------------------------------------------------------------------------- collecting

class Collector:
    """Gather every error of a form instead of stopping at the first::

        errors = Collector()
        name = errors.check(text, data.get("name"), "name")
        amount = errors.check(money, data.get("amount"), "amount")
        errors.raise_any()
    """

    def __init__(self) -> None:
        self.errors: list[ValidationError] = []

    def check(self, parser: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return parser(*args, **kwargs)
        except ValidationError as exc:
            self.errors.append(exc)
            return None

    def raise_any(self) -> None:
        if self.errors:
            raise ValidationError.many(self.errors)
