"""Pure rules of documents: amounts in words, Russian dates, totals with VAT, the payment
QR payload (ГОСТ Р 56042-2014), link states and signature codes.  No nameko, no SQL."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from num2words import num2words

from services.kit.errors import Conflict, ValidationError
from services.kit.money import CENT, parse_money

KINDS = ("proposal", "contract", "invoice", "act", "custom")
KIND_TITLES = {"proposal": "Коммерческое предложение", "contract": "Договор",
               "invoice": "Счёт на оплату", "act": "Акт", "custom": "Документ"}
MONTHS = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
          "сентября", "октября", "ноября", "декабря")
VAT_RATES = (None, Decimal("0"), Decimal("5"), Decimal("7"), Decimal("10"), Decimal("20"),
             Decimal("22"))
LINK_DAYS = 30            # a new link's life, changed by the manager
CODE_TTL = timedelta(minutes=10)
CODE_ATTEMPTS = 5


def plural(n: int, one: str, few: str, many: str) -> str:
    """The Russian form of a noun after ``n``: 1 рубль, 2 рубля, 5 рублей, 11 рублей."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def amount_in_words(amount: Decimal) -> str:
    """The accounting form: ``Decimal("120000.50")`` -> "Сто двадцать тысяч рублей 50 копеек"
    (roubles in words, kopecks in two digits, as 1C and the banks print it)."""
    amount = Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)
    if amount < 0:
        raise ValueError("an amount in words is never negative")
    roubles = int(amount)
    kopecks = int((amount - roubles) * 100)
    words = num2words(roubles, lang="ru")
    words = words[:1].upper() + words[1:]
    return (f"{words} {plural(roubles, 'рубль', 'рубля', 'рублей')} "
            f"{kopecks:02d} {plural(kopecks, 'копейка', 'копейки', 'копеек')}")


def date_ru(day: date) -> str:
    """"1 декабря 2026 г." — how a date is written on a Russian document."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year} г."


def money_ru(amount: Decimal | str | None) -> str:
    """"120 000,50": thin groups and a decimal comma, as on Russian documents."""
    if amount is None or amount == "":
        return ""
    value = Decimal(str(amount)).quantize(CENT, rounding=ROUND_HALF_UP)
    whole, frac = f"{value:,.2f}".split(".")
    return f"{whole.replace(',', chr(0xA0))},{frac}"


def vat_rate(value: Any) -> Decimal | None:
    """Our company's VAT rate in percent, or None when we work without VAT."""
    if value in (None, "", "none"):
        return None
    try:
        rate = Decimal(str(value))
    except ArithmeticError:
        rate = Decimal(-1)
    if rate not in VAT_RATES:
        raise ValidationError("Ставка НДС должна быть одной из: без НДС, 0, 5, 7, 10, 20, 22 %.",
                              field="vat_rate", key="vat_rate.unknown",
                              params={"value": str(value)})
    return rate


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal   # the lines' amounts as sold (VAT included, if any)
    vat_rate: Decimal | None
    vat: Decimal
    total: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {"subtotal": self.subtotal, "vat_rate": self.vat_rate, "vat": self.vat,
                "total": self.total, "total_in_words": amount_in_words(self.total),
                "vat_text": (f"В том числе НДС {self.vat_rate.normalize():f}%"
                             if self.vat_rate is not None else "Без НДС")}


def totals(line_amounts: Sequence[Decimal], rate: Decimal | None) -> Totals:
    """Calculator prices include VAT (what the client pays), so VAT is the included part:
    total × rate / (100 + rate), rounded half up to kopecks."""
    subtotal = sum((Decimal(a) for a in line_amounts), Decimal("0")).quantize(CENT)
    vat = Decimal("0.00")
    if rate:
        vat = (subtotal * rate / (100 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
    return Totals(subtotal=subtotal, vat_rate=rate, vat=vat, total=subtotal)


def table_lines(lines: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The calculator's lines as a document's table: numbered, money as Decimal."""
    out = []
    for n, line in enumerate(lines, start=1):
        quantity = Decimal(str(line.get("quantity") or "1"))
        out.append({"n": n, "kind": line.get("kind") or "service",
                    "name": str(line.get("name") or ""), "quantity": quantity.normalize(),
                    "unit": line.get("unit") or ("шт." if line.get("kind") == "goods"
                                                 else "усл."),
                    "unit_price": parse_money(str(line.get("unit_price") or "0")),
                    "discount": Decimal(str(line.get("discount") or "0")).normalize(),
                    "amount": parse_money(str(line.get("amount") or "0"))})
    return out


# -- the payment QR code (ГОСТ Р 56042-2014) ----------------------------------------------
QR_REQUIRED = ("Name", "PersonalAcc", "BankName", "BIC", "CorrespAcc")


def _qr_value(value: Any) -> str:
    # "|" separates the fields and has no escape in the standard: a value never carries one
    return " ".join(str(value or "").replace("|", " ").split())


def qr_payload(company: Mapping[str, Any], amount: Decimal, purpose: str) -> str:
    """The string a Russian banking app reads: ``ST00012|Name=...|...|Sum=<kopecks>|...``.
    ``ST0001`` is the format, ``2`` the UTF-8 encoding."""
    fields = {"Name": company.get("name"), "PersonalAcc": company.get("settlement_account"),
              "BankName": company.get("bank_name"), "BIC": company.get("bik"),
              "CorrespAcc": company.get("correspondent_account")}
    missing = [key for key in QR_REQUIRED if not _qr_value(fields[key])]
    if missing:
        raise ValidationError("Для QR-кода оплаты заполните реквизиты компании: "
                              + ", ".join(missing) + ".", field="company",
                              key="company.qr_incomplete", params={"missing": missing})
    kopecks = int((Decimal(amount).quantize(CENT) * 100).to_integral_value())
    parts = [f"{key}={_qr_value(value)}" for key, value in fields.items()]
    parts.append(f"PayeeINN={_qr_value(company.get('inn'))}")
    if company.get("kpp"):
        parts.append(f"KPP={_qr_value(company.get('kpp'))}")
    parts += [f"Sum={kopecks}", f"Purpose={_qr_value(purpose)}"]
    return "|".join(["ST00012", *parts])


def qr_svg_data_uri(payload: str) -> str:
    """The QR code as an SVG data URI (no file, no network: WeasyPrint embeds it)."""
    import segno

    return segno.make(payload, encoding="utf-8", error="m").svg_data_uri(scale=3, border=2)


# -- links and signatures -----------------------------------------------------------------
def new_token() -> str:
    """192 random bits, URL-safe: the only thing a client's link carries."""
    return secrets.token_urlsafe(24)


def link_state(revoked_at: datetime | None, expires_at: datetime | None,
               now: datetime) -> str:
    """``active``, ``revoked`` or ``expired``."""
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "active"


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def code_hash(code: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{code.strip()}".encode()).hexdigest()


def code_matches(code: str, salt: str, expected: str) -> bool:
    return hmac.compare_digest(code_hash(code, salt), expected)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def kind_of(value: Any) -> str:
    if value not in KINDS:
        raise ValidationError("Неизвестный вид документа.", field="kind", key="kind.unknown",
                              params={"value": str(value), "allowed": list(KINDS)})
    return str(value)


# -- the inputs every part reads ------------------------------------------------------------
def ident(value: Any, field: str) -> int:
    """A positive id named by its field, else ValidationError (a bool is no id)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number <= 0:
        raise ValidationError("Нужен идентификатор.", field=field, key="id.invalid",
                              params={"value": str(value)})
    return number


def text(data: Mapping[str, Any], field: str, limit: int, required: bool = False) -> str | None:
    """A stripped text of at most ``limit`` characters; None when empty (and allowed)."""
    value = data.get(field)
    if value is not None and not isinstance(value, str):
        raise ValidationError("Ожидается текст.", field=field, key="text.invalid")
    value = (value or "").strip()
    if required and not value:
        raise ValidationError("Заполните поле.", field=field, key="required")
    if len(value) > limit:
        raise ValidationError(f"Не длиннее {limit} символов.", field=field, key="text.too_long",
                              params={"max": limit})
    return value or None


def first_of(values: Any) -> str | None:
    """The first of a contact's phones or e-mails (a list, or one comma-separated text)."""
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",")]
    return next((str(v) for v in values or [] if v), None)


def decide(document: Any, status: str, now: datetime) -> None:
    """The client's decision on a document (approved, declined): one only, and none after
    a signature."""
    if document.status in ("approved", "declined", "signed"):
        raise Conflict("Решение по документу уже принято.", field="token",
                       key="document.decided", params={"status": document.status})
    document.status, document.decided_at = status, now
