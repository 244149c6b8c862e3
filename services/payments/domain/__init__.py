"""Pure rules of payment plans, receipts, the cash-flow forecast and online payment
notices: no nameko, no SQL."""
from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.kit import parse
from services.kit.errors import ValidationError
from services.kit.money import parse_money
from services.kit.parse import identifier
from services.payments.domain.matching import canonical_number

ZERO = Decimal("0.00")
OPEN = ("planned", "partial")
MAX_TEXT = 2000
MAX_NUMBER = 60
GRANULARITIES = ("day", "week", "month")
MAX_PERIODS = 60


# --- small parsers ---------------------------------------------------------------------


def parse_date(value: Any, field: str) -> date:
    return parse.day(value, field)


def optional_text(data: dict[str, Any], field: str, limit: int = MAX_TEXT) -> str | None:
    value = data.get(field)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a document number sent as a number
    return parse.optional_text(value, field, limit=limit)


def required_text(data: dict[str, Any], field: str, what: str, limit: int = MAX_TEXT) -> str:
    text = optional_text(data, field, limit)
    if not text:
        raise ValidationError("Обязательное поле.", field=field, key="required")
    return text


def currency_code(value: Any, field: str = "currency") -> str:
    currency = str(value or "RUB").strip().upper()
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise ValidationError(f"«{currency}» — не код валюты ISO.", field=field,
                              key="currency.invalid", params={"value": str(currency)})
    return currency


def document_number(data: dict[str, Any], field: str) -> tuple[str | None, str | None]:
    """The number as written and its canonical key (how the matcher compares it)."""
    number = optional_text(data, field, MAX_NUMBER)
    if number is None:
        return None, None
    key = canonical_number(number)
    if not key or not any(c.isalnum() for c in key):
        raise ValidationError(f"«{number}» — не номер документа.", field=field,
                              key="document_number.invalid", params={"value": str(number)})
    return number, key


# --- planned payments --------------------------------------------------------------------


def validate_planned_payment(data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError("Нужен объект JSON.", field="data", key="object.invalid")
    amount = parse_money(data.get("amount"), "amount")
    if amount == ZERO:
        raise ValidationError("Сумма должна быть больше нуля.", field="amount",
                              key="amount.positive")
    invoice, invoice_key = document_number(data, "invoice_number")
    contract, contract_key = document_number(data, "contract_number")
    return {"amount": amount, "currency": currency_code(data.get("currency")),
            "due_date": parse_date(data.get("due_date"), "due_date"),
            "comment": optional_text(data, "comment"),
            "invoice_number": invoice, "invoice_key": invoice_key,
            "contract_number": contract, "contract_key": contract_key}


EDITABLE = ("amount", "comment", "invoice_number", "contract_number")


def validate_payment_changes(data: dict[str, Any], received: Decimal) -> dict[str, Any]:
    """Changes to a planned payment's amount, comment or document numbers.  The due date
    moves only with a reason (``validate_move``)."""
    if not isinstance(data, dict):
        raise ValidationError("Нужен объект JSON.", field="data", key="object.invalid")
    if "due_date" in data:
        raise ValidationError("Срок переносится отдельно, с указанием причины.", field="due_date",
                              key="due_date.move_with_reason")
    if "currency" in data:
        raise ValidationError("Валюту не изменить: отмените платёж и запланируйте новый.",
                              field="currency", key="currency.fixed")
    changes: dict[str, Any] = {}
    if "amount" in data:
        amount = parse_money(data.get("amount"), "amount")
        if amount == ZERO:
            raise ValidationError("Сумма должна быть больше нуля.", field="amount",
                                  key="amount.positive")
        changes["amount"] = amount
    if "comment" in data:
        changes["comment"] = optional_text(data, "comment")
    for field in ("invoice_number", "contract_number"):
        if field in data:
            number, key = document_number(data, field)
            changes[field] = number
            changes[field.replace("_number", "_key")] = key
    if not changes:
        raise ValidationError(f"Нечего менять: укажите одно из полей {', '.join(EDITABLE)}.",
                              field="data", key="changes.empty",
                              params={"fields": ", ".join(EDITABLE)})
    return changes


def payment_status(amount: Decimal, received: Decimal) -> str:
    if received <= ZERO:
        return "planned"
    return "paid" if received >= amount else "partial"


def outstanding_of(amount: Decimal, received: Decimal, status: str) -> Decimal:
    """What is still expected: nothing of a paid or cancelled payment."""
    return max(amount - received, ZERO) if status in OPEN else ZERO


def totals(payments: Iterable[tuple[Decimal, Decimal, str]]) -> dict[str, Decimal]:
    """Budget, paid, outstanding and credit (overpayment) of a deal from
    (amount, received, status) of its planned payments; cancelled ones do not count."""
    live = [(a, r) for a, r, s in payments if s != "cancelled"]
    budget = sum((a for a, _ in live), ZERO)
    paid = sum((r for _, r in live), ZERO)
    outstanding = sum((max(a - r, ZERO) for a, r in live), ZERO)
    credit = sum((max(r - a, ZERO) for a, r in live), ZERO)
    return {"budget": budget, "paid": paid, "outstanding": outstanding, "credit": credit}


def is_overdue(status: str, due_date: date, today: date) -> bool:
    return status in OPEN and due_date < today


def validate_move(data: dict[str, Any], current: date) -> tuple[date, str]:
    if not isinstance(data, dict):
        raise ValidationError("Нужен объект JSON.", field="data", key="object.invalid")
    new = parse_date(data.get("due_date"), "due_date")
    if new == current:
        raise ValidationError(f"Платёж уже назначен на {current:%d.%m.%Y}.", field="due_date",
                              key="due_date.same", params={"date": f"{current:%d.%m.%Y}"})
    return new, required_text(data, "reason", "the reason for the move", 500)


def check_cancellable(status: str, received: Decimal) -> None:
    if status == "cancelled":
        raise ValidationError("Платёж уже отменён.", field="payment_id",
                              key="payment.already_cancelled")
    if received > ZERO:
        raise ValidationError("По платежу уже поступили деньги: сначала отмените поступления.",
                              field="payment_id", key="payment.has_receipts")


def check_currency(currency: str, deal_currencies: Iterable[str]) -> None:
    """A deal's plan is in one currency, so its budget is a sum that means something."""
    others = set(deal_currencies) - {currency}
    if others:
        raise ValidationError(f"Платежи этой сделки — в {sorted(others)[0]}.", field="currency",
                              key="currency.deal", params={"currency": sorted(others)[0]})


# --- receipts ------------------------------------------------------------------------------


def validate_receipt(data: dict[str, Any], outstanding: Decimal, today: date) -> dict[str, Any]:
    """A manual receipt: the amount defaults to what is outstanding; more is allowed (the
    rest is the client's credit); the date defaults to today and is not in the future."""
    if not isinstance(data, dict):
        raise ValidationError("Нужен объект JSON.", field="data", key="object.invalid")
    source = data.get("source") or "manual"
    if source != "manual":
        raise ValidationError("Вручную записываются только ручные поступления.", field="source",
                              key="receipt.manual_only")
    raw = data.get("amount")
    amount = parse_money(raw, "amount") if raw not in (None, "") else outstanding
    if amount <= ZERO:
        raise ValidationError("Сумма должна быть больше нуля.", field="amount",
                              key="amount.positive")
    received_on = (parse_date(data["received_on"], "received_on")
                   if data.get("received_on") else today)
    if received_on > today:
        raise ValidationError("Дата поступления не может быть в будущем.", field="received_on",
                              key="received_on.future")
    return {"amount": amount, "received_on": received_on,
            "comment": optional_text(data, "comment")}


def validate_correction(data: dict[str, Any], amount: Decimal, received_on: date, source: str,
                        today: date) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError("Нужен объект JSON.", field="data", key="object.invalid")
    reason = required_text(data, "reason", "the reason for the correction", 500)
    new_amount = parse_money(data["amount"], "amount") if data.get("amount") not in (
        None, "") else amount
    new_date = (parse_date(data["received_on"], "received_on") if data.get("received_on")
                else received_on)
    if new_amount <= ZERO:
        raise ValidationError("Сумма должна быть больше нуля; чтобы убрать поступление, "
                              "отмените его.", field="amount", key="amount.positive_or_cancel")
    if new_date > today:
        raise ValidationError("Дата поступления не может быть в будущем.", field="received_on",
                              key="received_on.future")
    if (new_amount, new_date) == (amount, received_on):
        raise ValidationError("Ничего не меняется.", field="amount", key="correction.same")
    if source != "manual":
        field = "amount" if new_amount != amount else "received_on"
        raise ValidationError("Это поступление пришло из банка или от платёжного сервиса: "
                              "отмените его и разнесите деньги заново.", field=field,
                              key="receipt.external", params={"source": source})
    return {"amount": new_amount, "received_on": new_date, "reason": reason}


def validate_allocations(raw: Any, total: Decimal) -> list[tuple[int, Decimal]]:
    """A transaction split over planned payments: each part > 0, one part per payment,
    the parts add up to the transaction amount exactly."""
    if not isinstance(raw, list) or not raw:
        raise ValidationError("Укажите хотя бы одну часть: платёж и сумму.", field="allocations",
                              key="allocations.empty")
    parts: list[tuple[int, Decimal]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValidationError("Нужен объект JSON.", field=f"allocations[{i}]",
                                  key="object.invalid")
        payment_id = identifier(item.get("payment_id"), f"allocations[{i}].payment_id")
        amount = parse_money(item.get("amount"), f"allocations[{i}].amount")
        if amount <= ZERO:
            raise ValidationError("Сумма должна быть больше нуля.",
                                  field=f"allocations[{i}].amount", key="amount.positive")
        if any(p == payment_id for p, _ in parts):
            raise ValidationError(f"Платёж {payment_id} указан дважды.",
                                  field=f"allocations[{i}].payment_id", key="allocations.twice",
                                  params={"payment_id": payment_id})
        parts.append((payment_id, amount))
    allocated = sum((a for _, a in parts), ZERO)
    if allocated != total:
        raise ValidationError(f"Части дают в сумме {allocated}, а в операции {total}.",
                              field="allocations", key="allocations.total",
                              params={"allocated": str(allocated), "total": str(total)})
    return parts


# --- cash-flow forecast --------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # exclusive
    label: str


def period_start(day: date, granularity: str) -> date:
    if granularity == "day":
        return day
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next(start: date, granularity: str) -> date:
    if granularity == "day":
        return start + timedelta(days=1)
    if granularity == "week":
        return start + timedelta(days=7)
    days = calendar.monthrange(start.year, start.month)[1]
    return start + timedelta(days=days)


def _label(start: date, end: date, granularity: str) -> str:
    if granularity == "month":
        return start.strftime("%Y-%m")
    if granularity == "week":
        last = end - timedelta(days=1)
        return f"{start:%d.%m}–{last:%d.%m}"
    return start.strftime("%d.%m")


def validate_forecast_query(data: dict[str, Any]) -> dict[str, Any]:
    granularity = str(data.get("granularity") or "week")
    if granularity not in GRANULARITIES:
        raise ValidationError(f"Выберите одно из: {', '.join(GRANULARITIES)}.",
                              field="granularity", key="choice.invalid",
                              params={"value": str(granularity),
                                      "options": ", ".join(GRANULARITIES)})
    result: dict[str, Any] = {"granularity": granularity}
    for field, default in (("periods", 12), ("past", 0)):
        raw = data.get(field)
        try:
            value = default if raw in (None, "") else int(raw)
        except (TypeError, ValueError):
            raise ValidationError("Нужно целое число.", field=field, key="number.int") from None
        low = 1 if field == "periods" else 0
        if not low <= value <= MAX_PERIODS:
            raise ValidationError(f"От {low} до {MAX_PERIODS}.", field=field, key="number.range",
                                  params={"min": low, "max": MAX_PERIODS})
        result[field] = value
    manager = data.get("manager_id")
    result["manager_id"] = None if manager in (None, "") else identifier(manager, "manager_id")
    result["currency"] = currency_code(data.get("currency"))
    return result


def periods(today: date, granularity: str, ahead: int, past: int = 0) -> list[Period]:
    """``past`` whole periods before the current one, the current one, and the rest of
    ``ahead`` (the current period counts as the first of them)."""
    start = period_start(today, granularity)
    for _ in range(past):
        start = period_start(start - timedelta(days=1), granularity)
    found = []
    for _ in range(past + ahead):
        end = _next(start, granularity)
        found.append(Period(start, end, _label(start, end, granularity)))
        start = end
    return found


def forecast(open_rows: Iterable[tuple[date, int | None, Decimal]],
             received_rows: Iterable[tuple[date, int | None, Decimal]], today: date,
             window: list[Period]) -> dict[str, Any]:
    """Expected receipts per period by due date, overall and per manager.

    ``open_rows`` are (due_date, manager_id, outstanding) sums of open payments: those due
    before today are overdue and kept apart, the rest fall in their period (or "later"
    beyond the window).  ``received_rows`` are (received_on, manager_id, amount) of
    receipts: the received line beside the expectation, with its running total."""
    n = len(window)
    first, last = window[0].start, window[-1].end
    managers: dict[int | None, dict[str, Any]] = {}

    def row(manager: int | None) -> dict[str, Any]:
        if manager not in managers:
            managers[manager] = {"manager_id": manager, "overdue": ZERO, "later": ZERO,
                                 "expected": [ZERO] * n, "received": [ZERO] * n}
        return managers[manager]

    def index(day: date) -> int | None:
        if day < first or day >= last:
            return None
        for i, p in enumerate(window):  # at most MAX_PERIODS * 2
            if p.start <= day < p.end:
                return i
        return None

    for due, manager, amount in open_rows:
        target = row(manager)
        if due < today:
            target["overdue"] += amount
        elif (i := index(due)) is not None:
            target["expected"][i] += amount
        elif due >= last:
            target["later"] += amount
    for received_on, manager, amount in received_rows:
        if (i := index(received_on)) is not None and received_on <= today:
            row(manager)["received"][i] += amount

    expected = [sum((m["expected"][i] for m in managers.values()), ZERO) for i in range(n)]
    received = [sum((m["received"][i] for m in managers.values()), ZERO) for i in range(n)]
    running, cumulative = ZERO, []
    for i, p in enumerate(window):
        running += received[i]
        cumulative.append(running if p.start <= today else None)
    listed = sorted(managers.values(), key=lambda m: (m["manager_id"] is None,
                                                      m["manager_id"] or 0))
    for m in listed:
        m["total_expected"] = sum(m["expected"], ZERO)
    return {
        "today": today,
        "periods": [{"start": p.start, "end": p.end - timedelta(days=1), "label": p.label,
                     "current": p.start <= today < p.end, "past": p.end <= today,
                     "expected": expected[i], "received": received[i],
                     "received_to_date": cumulative[i]}
                    for i, p in enumerate(window)],
        "overdue": sum((m["overdue"] for m in listed), ZERO),
        "later": sum((m["later"] for m in listed), ZERO),
        "expected_total": sum(expected, ZERO),
        "received_total": sum(received, ZERO),
        "managers": listed,
    }


# --- events of other services ------------------------------------------------------------


def new_values(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Current values from an ``*_updated`` event: top-level fields win, else the new side
    of ``changes`` ({field: [old, new]} or {field: {"from": old, "to": new}})."""
    found: dict[str, Any] = {}
    raw = data.get("changes")
    changes: dict[str, Any] = raw if isinstance(raw, dict) else {}
    for name in fields:
        if name in data:
            found[name] = data[name]
            continue
        change = changes.get(name)
        if isinstance(change, (list, tuple)) and len(change) == 2:
            found[name] = change[1]
        elif isinstance(change, dict) and "to" in change:
            found[name] = change["to"]
    return found


# --- online payment (YooKassa-style notifications) -------------------------------------------


@dataclass(frozen=True)
class OnlineNotice:
    event: str
    provider_id: str


def parse_notification(body: Any) -> OnlineNotice:
    """The parts of a provider notification we trust before checking it: its event and
    the provider's payment id.  Everything else comes from the provider's API."""
    if not isinstance(body, dict):
        raise ValidationError("Нужен объект JSON.", field="body", key="object.invalid")
    if body.get("type") != "notification":
        raise ValidationError("Ожидается уведомление (type = notification).", field="type",
                              key="notice.type")
    event = body.get("event")
    if not isinstance(event, str) or not event:
        raise ValidationError("Обязательное поле.", field="event", key="required")
    obj = body.get("object")
    if not isinstance(obj, dict):
        raise ValidationError("Обязательное поле.", field="object", key="required")
    provider_id = obj.get("id")
    if not isinstance(provider_id, str) or not 1 <= len(provider_id) <= 100 or not all(
            c.isalnum() or c in "-_" for c in provider_id):
        raise ValidationError("Это не номер платежа.", field="object.id", key="notice.payment_id")
    return OnlineNotice(event, provider_id)


@dataclass(frozen=True)
class OnlinePayment:
    provider_id: str
    payment_id: int
    amount: Decimal
    currency: str
    paid_on: date | None


def verified_payment(obj: Any, provider_id: str) -> OnlinePayment:
    """The provider's own answer about a payment (GET /v3/payments/{id}): it must be that
    payment, succeeded, with an amount and our planned payment id in its metadata."""
    if not isinstance(obj, dict) or obj.get("id") != provider_id:
        raise ValidationError("Платёжный сервис не подтверждает этот платёж.", field="object.id",
                              key="notice.unconfirmed")
    if obj.get("status") != "succeeded":
        raise ValidationError(f"Платёжный сервис сообщает статус «{obj.get('status')}», "
                              "а не «succeeded».",
                              field="object.status", key="notice.status",
                              params={"status": str(obj.get("status"))})
    amount_obj = obj.get("amount")
    if not isinstance(amount_obj, dict):
        raise ValidationError("Обязательное поле.", field="object.amount", key="required")
    amount = parse_money(str(amount_obj.get("value", "")), "object.amount.value")
    if amount <= ZERO:
        raise ValidationError("Сумма должна быть больше нуля.", field="object.amount.value",
                              key="amount.positive")
    currency = currency_code(amount_obj.get("currency"), "object.amount.currency")
    raw_metadata = obj.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    raw_id = metadata.get("payment_id")
    if raw_id in (None, ""):
        raise ValidationError("В платеже не сказано, какой плановый платёж он оплачивает.",
                              field="object.metadata.payment_id", key="notice.no_payment")
    paid_on = None
    stamp = obj.get("captured_at") or obj.get("created_at")
    if isinstance(stamp, str):
        try:
            paid_on = datetime.fromisoformat(stamp.replace("Z", "+00:00")).date()
        except ValueError:
            paid_on = None
    return OnlinePayment(provider_id, identifier(raw_id, "object.metadata.payment_id"),
                         amount, currency, paid_on)


def page_args(query: dict[str, Any] | None, default: int = 50) -> tuple[dict[str, Any], int, int]:
    query = dict(query) if isinstance(query, dict) else {}
    try:
        page = max(1, int(query.get("page") or 1))
        per_page = min(200, max(1, int(query.get("per_page") or default)))
    except (TypeError, ValueError):
        raise ValidationError("Нужно целое число.", field="page", key="number.int") from None
    return query, page, per_page
