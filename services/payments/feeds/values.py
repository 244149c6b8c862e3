"""Strict readers for the few value types statements carry.

Each returns None for a value it does not accept; the format parser knows the location
and turns that into a StatementError naming it.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

CENT = Decimal("0.01")

# [0-9], not \d: \d also accepts Arabic-Indic and other digits that Decimal() reads.
# Russian files: "1234.56", "1 234,56"; at most two decimals (kopecks).
_RU_AMOUNT = re.compile(r"[0-9]{1,16}(?:[.,][0-9]{1,2})?")
# ISO 20022 ActiveOrHistoricCurrencyAndAmount: dot, up to 5 decimals, 18 digits in all.
_ISO_AMOUNT = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,5})?")
# SWIFT: comma decimal mark, which is mandatory; "80," is 80.00.
_SWIFT_AMOUNT = re.compile(r"[0-9]{1,15},[0-9]{0,2}")
_RU_DATE = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4}|[0-9]{2})")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_CURRENCY = re.compile(r"[A-Z]{3}")


def ru_amount(text: str, *, signed: bool = False) -> Decimal | None:
    """A document sum; ``signed`` for balances, which go below zero on an overdraft."""
    cleaned = text.replace("\u00a0", "").replace(" ", "")
    negative = signed and cleaned.startswith("-")
    if negative:
        cleaned = cleaned[1:]
    if not _RU_AMOUNT.fullmatch(cleaned):
        return None
    amount = Decimal(cleaned.replace(",", ".")).quantize(CENT)
    return -amount if negative else amount


def iso_amount(text: str) -> Decimal | None:
    text = text.strip()
    if not _ISO_AMOUNT.fullmatch(text) or len(text) > 19:
        return None
    amount = Decimal(text)
    # 500000 and 500000.00 are the same money; keep cents visible unless there are more
    return amount.quantize(CENT) if amount == amount.quantize(CENT) else amount


def swift_amount(text: str) -> Decimal | None:
    if not _SWIFT_AMOUNT.fullmatch(text):
        return None
    return Decimal(text.replace(",", ".")).quantize(CENT)


def ru_date(text: str) -> date | None:
    """DD.MM.YYYY (DD.MM.YY seen in old exports)."""
    found = _RU_DATE.fullmatch(text.strip())
    if not found:
        return None
    day, month, year = (int(g) for g in found.groups())
    return _date(year + 2000 if year < 100 else year, month, day)


def iso_date(text: str) -> date | None:
    """YYYY-MM-DD, or the date part of an ISO date-time."""
    found = _ISO_DATE.fullmatch(text.strip()[:10])
    if not found:
        return None
    year, month, day = (int(g) for g in found.groups())
    return _date(year, month, day)


def yymmdd(text: str) -> date | None:
    if len(text) != 6 or not text.isascii() or not text.isdigit():
        return None
    year = int(text[:2])
    # SWIFT years have two digits; statements are about the recent past.
    return _date(year + (1900 if year >= 80 else 2000), int(text[2:4]), int(text[4:]))


def currency(text: str) -> str | None:
    text = text.strip().upper()
    return text if _CURRENCY.fullmatch(text) else None


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None
