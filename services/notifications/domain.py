"""Pure rules of notifications: what to tell whom, over which channels, in which words."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers

from services.kit.contract.notifications import CHANNELS, MESSAGE_CHANNELS
from services.kit.errors import ValidationError

# Kinds of events a person can be told about (N1).  The document and questionnaire kinds
# come from the documents service's events (``notify_user`` can tell them too).
KINDS = ("reminder_due", "payment_received", "payment_overdue", "deal_assigned",
         "questionnaire_filled", "document_signed", "document_viewed", "document_approved",
         "document_declined", "new_lead", "lead_overdue", "mail_flood")
EXTERNAL_CHANNELS = ("email", "telegram", "sms")
# SMS costs money per message: nobody gets it unless they ask for it.
DEFAULT_CHANNELS: dict[str, tuple[str, ...]] = {kind: ("app", "email", "telegram")
                                                for kind in KINDS}
# After a crash mid-send only e-mail is sent again by itself: its Message-ID comes from the
# delivery's key, so a repeat is the same message to every mail system.  Telegram and SMS
# have no such key; a repeat there could be a visible duplicate, so an interrupted one is
# marked failed for an administrator to decide.
RESEND_AFTER_INTERRUPTION = frozenset({"email"})
LANGS = ("ru", "en")
MAX_TEXT = 4000
MAX_SUBJECT = 200
SMS_LIMIT = 335  # five Cyrillic segments (67 characters each)

_EMAIL = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+")
_CHAT = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")


# --------------------------------------------------------------------------- formatting


def format_amount(amount: Any, currency: str = "RUB") -> str:
    """'1234567.5' -> '1 234 567,50 ₽' as Russian users read money."""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return str(amount)
    whole, cents = f"{value:,.2f}".split(".")
    symbol = {"RUB": "₽", "USD": "$", "EUR": "€"}.get(currency, currency)
    return f"{whole.replace(',', ' ')},{cents} {symbol}"


def format_date(value: Any) -> str:
    """'2026-03-02' or an ISO date-time -> '02.03.2026' (and the time when there is one)."""
    text = str(value or "")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if len(text) <= 10 or isinstance(value, date) and not isinstance(value, datetime):
        return moment.strftime("%d.%m.%Y")
    return moment.strftime("%d.%m.%Y %H:%M")


# --------------------------------------------------------------------------- notices


@dataclass(frozen=True)
class Notice:
    kind: str
    title: str
    body: str
    link: str | None


TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "ru": {
        "payment_received": ("Поступила оплата {amount}",
                             "Сделка «{deal_name}»: получено {amount} ({received_on})."),
        "payment_overdue": ("Просрочен платёж {amount}",
                            "Сделка «{deal_name}»: платёж {amount} ожидался {due_date}."),
        "reminder_due": ("Напоминание: {text}", "Сделка «{deal_name}», срок {due_at}."),
        "deal_assigned": ("Вам передана сделка «{deal_name}»",
                          "Вы назначены ответственным менеджером сделки «{deal_name}»."),
        "questionnaire_filled": ("Клиент заполнил анкету «{name}»",
                                 "Сделка «{deal_name}»: ответы сохранены в сделке."),
        "document_signed": ("Клиент подписал документ «{name}»",
                            "Сделка «{deal_name}»: документ подписан."),
        "document_viewed": ("Клиент открыл документ «{name}»",
                            "Сделка «{deal_name}»: просмотров — {views}."),
        "document_approved": ("Клиент согласовал документ «{name}»",
                              "Сделка «{deal_name}»: документ согласован."),
        "document_declined": ("Клиент отклонил документ «{name}»",
                              "Сделка «{deal_name}»: «{comment}»."),
        "new_lead": ("Новая заявка: {who}",
                     "Заявка №{lead_id} ({source_name}) ждёт ответа до {respond_by}."),
        "lead_overdue": ("Заявка №{lead_id} без ответа",
                         "Заявку от {who} никто не взял в работу до {respond_by}."),
        "mail_flood": ("Поток писем от {sender}",
                       "Больше {limit} писем за {minutes} мин: новые заявки от этого "
                       "адреса не создаются."),
        "telegram_linked": ("Telegram подключён",
                            "Теперь уведомления CRM будут приходить сюда."),
    },
    "en": {
        "payment_received": ("Payment received: {amount}",
                             "Deal “{deal_name}”: {amount} received ({received_on})."),
        "payment_overdue": ("Payment overdue: {amount}",
                            "Deal “{deal_name}”: {amount} was due on {due_date}."),
        "reminder_due": ("Reminder: {text}", "Deal “{deal_name}”, due {due_at}."),
        "deal_assigned": ("Deal “{deal_name}” is now yours",
                          "You are now the manager of the deal “{deal_name}”."),
        "questionnaire_filled": ("The client filled in the questionnaire “{name}”",
                                 "Deal “{deal_name}”: the answers are on the deal."),
        "document_signed": ("The client signed “{name}”",
                            "Deal “{deal_name}”: the document is signed."),
        "document_viewed": ("The client opened “{name}”",
                            "Deal “{deal_name}”: {views} view(s)."),
        "document_approved": ("The client approved “{name}”",
                              "Deal “{deal_name}”: the document is approved."),
        "document_declined": ("The client declined “{name}”",
                              "Deal “{deal_name}”: “{comment}”."),
        "new_lead": ("New lead: {who}",
                     "Lead #{lead_id} ({source_name}) awaits an answer by {respond_by}."),
        "lead_overdue": ("Lead #{lead_id} has no answer",
                         "Nobody took the lead from {who} by {respond_by}."),
        "mail_flood": ("A flood of mail from {sender}",
                       "More than {limit} messages in {minutes} min: no more leads are "
                       "made from this address for now."),
        "telegram_linked": ("Telegram linked",
                            "CRM notifications will arrive here from now on."),
    },
}


class _Fields(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "—"


def notice(kind: str, data: Mapping[str, Any], lang: str = "ru") -> Notice:
    """The words for ``kind`` in ``lang``; ``data`` holds the event's facts."""
    table = TEMPLATES.get(lang) or TEMPLATES["ru"]
    if kind not in table:
        raise ValidationError(f"Неизвестный вид уведомления «{kind}».", field="kind",
                              key="notification.kind", params={"value": str(kind)})
    title, body = table[kind]
    fields = _Fields({k: v for k, v in data.items() if v not in (None, "")})
    if "amount" in data:
        fields["amount"] = format_amount(data["amount"], str(data.get("currency") or "RUB"))
    for name in ("received_on", "due_date", "due_at", "respond_by"):
        if data.get(name):
            fields[name] = format_date(data[name])
    fields.setdefault("deal_name", f"#{data.get('deal_id', '')}")
    deal_id = data.get("deal_id")
    link = data.get("link") or (f"/deals/{deal_id}" if deal_id else None)
    return Notice(kind, _clip(title.format_map(fields), MAX_SUBJECT),
                  _clip(body.format_map(fields), MAX_TEXT), link)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def absolute(link: str | None, public_url: str) -> str | None:
    if not link:
        return None
    if link.startswith(("http://", "https://")):
        return link
    return f"{public_url.rstrip('/')}/{link.lstrip('/')}"


def render(channel: str, item: Notice, public_url: str, lang: str = "ru") -> tuple[str, str]:
    """(subject, text) of ``item`` for ``channel``."""
    url = absolute(item.link, public_url)
    if channel == "sms":
        text = f"{item.title}. {item.body}"
        return "", _clip(text, SMS_LIMIT)
    if channel == "telegram":
        return item.title, item.body + (f"\n{url}" if url else "")
    footer = ("Настроить уведомления" if lang == "ru" else "Notification settings")
    lines = [item.body]
    if url:
        lines += ["", url]
    lines += ["", "—", f"{footer}: {absolute('/profile', public_url)}"]
    return item.title, "\n".join(lines)


# --------------------------------------------------------------------------- recipients


def normalise_email(value: Any, field: str = "email") -> str | None:
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    if len(text) > 320 or not _EMAIL.fullmatch(text) or not text.split("@", 1)[0].isascii():
        raise ValidationError(f"«{text}» — не адрес электронной почты.", field=field,
                              key="email.invalid", params={"value": text})
    local, domain = text.rsplit("@", 1)
    try:
        domain.encode("idna")
    except UnicodeError:
        raise ValidationError(f"«{text}» — не адрес электронной почты.", field=field,
                              key="email.invalid", params={"value": text}) from None
    return f"{local}@{domain.lower()}"


def normalise_phone(value: Any, field: str = "phone", region: str = "RU") -> str | None:
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationError(f"«{text}» — не номер телефона.", field=field, key="phone.invalid",
                              params={"value": text})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_chat(value: Any, field: str = "address") -> str:
    text = str(value or "").strip()
    if not _CHAT.fullmatch(text):
        raise ValidationError(f"«{text}» — не номер чата Telegram и не @канал.", field=field,
                              key="telegram.invalid", params={"value": text})
    return text


def recipient_changes(data: Any) -> dict[str, Any]:
    """Fields of ``set_recipient``: only those given change; empty clears."""
    if not isinstance(data, Mapping):
        raise ValidationError("Нужен объект JSON.", field="recipient", key="object.invalid")
    unknown = set(data) - {"email", "phone", "name", "lang"}
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationError("Такого поля нет.", field=name, key="field.unknown")
    changes: dict[str, Any] = {}
    if "email" in data:
        changes["email"] = normalise_email(data["email"])
    if "phone" in data:
        changes["phone"] = normalise_phone(data["phone"])
    if "name" in data:
        changes["name"] = (str(data["name"]).strip()[:200] or None) if data["name"] else None
    if "lang" in data:
        if data["lang"] not in LANGS:
            raise ValidationError(f"«{data['lang']}» — такого варианта нет.",
                                  field="lang", key="choice.invalid",
                                  params={"value": str(data["lang"]),
                                          "options": ", ".join(LANGS)})
        changes["lang"] = data["lang"]
    return changes


def preferences_from(data: Any) -> dict[str, list[str]]:
    """``{kind: [channel, ...]}`` checked: known kinds, known channels, no repeats."""
    if not isinstance(data, Mapping):
        raise ValidationError("Нужен объект JSON.", field="preferences", key="object.invalid")
    cleaned: dict[str, list[str]] = {}
    for kind, channels in data.items():
        if kind not in KINDS:
            raise ValidationError(f"Неизвестный вид уведомления «{kind}».",
                                  field=f"preferences.{kind}", key="notification.kind",
                                  params={"value": str(kind)})
        if not isinstance(channels, (list, tuple)):
            raise ValidationError("Нужен список.", field=f"preferences.{kind}", key="list.invalid")
        for channel in channels:
            if channel not in CHANNELS:
                raise ValidationError(f"«{channel}» — такого варианта нет.",
                                      field=f"preferences.{kind}", key="choice.invalid",
                                      params={"value": str(channel),
                                              "options": ", ".join(CHANNELS)})
        cleaned[kind] = [c for c in CHANNELS if c in channels]
    return cleaned


def channels_for(kind: str, chosen: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(chosen) if chosen is not None else DEFAULT_CHANNELS.get(kind, ("app",))


@dataclass(frozen=True)
class Planned:
    channel: str
    address: str | None
    skip_reason: str | None = None


def plan(channels: Iterable[str], addresses: Mapping[str, str | None],
         configured: Mapping[str, bool]) -> list[Planned]:
    """One delivery per external channel wanted; those that cannot go are planned as
    skipped with the reason, so the log shows why nothing was sent."""
    planned = []
    for channel in channels:
        if channel not in EXTERNAL_CHANNELS:
            continue
        address = addresses.get(channel)
        if not configured.get(channel):
            planned.append(Planned(channel, address, "channel not configured"))
        elif not address:
            planned.append(Planned(channel, None, {
                "email": "no e-mail address in the profile",
                "telegram": "Telegram is not linked",
                "sms": "no phone number in the profile"}[channel]))
        else:
            planned.append(Planned(channel, address))
    return planned


@dataclass(frozen=True)
class Telling:
    """What telling a person one thing writes: the in-app notice (None when they do not
    want it in the app) and one delivery row per channel, the app's included."""
    notice: dict[str, Any] | None
    deliveries: list[dict[str, Any]]

    @property
    def pending(self) -> bool:
        return any(d["status"] == "pending" for d in self.deliveries)


def telling(kind: str, facts: Mapping[str, Any], *, user_id: int, source_key: str,
            deal_id: int | None, lang: str, chosen: Iterable[str] | None,
            addresses: Mapping[str, str | None], configured: Mapping[str, bool],
            public_url: str, now: datetime) -> Telling:
    """The rows that tell ``user_id`` about ``kind`` over the channels they chose (or the
    kind's defaults); a channel that cannot go is a skipped delivery with the reason."""
    channels = channels_for(kind, chosen)
    item = notice(kind, facts, lang)
    key = source_key[:200]
    common = {"source_key": key, "kind": kind, "recipient_key": f"user:{user_id}",
              "user_id": user_id}
    told = None
    rows: list[dict[str, Any]] = []
    if "app" in channels:
        told = {"user_id": user_id, "kind": kind, "title": item.title, "body": item.body,
                "link": item.link, "deal_id": deal_id, "dedup_key": key}
        rows.append({**common, "channel": "app", "address": None, "subject": item.title,
                     "body": item.body, "status": "sent", "sent_at": now})
    for planned in plan(channels, addresses, configured):
        subject, body = render(planned.channel, item, public_url, lang)
        rows.append({**common, "channel": planned.channel, "address": planned.address,
                     "subject": subject, "body": body,
                     "status": "skipped" if planned.skip_reason else "pending",
                     "last_error": planned.skip_reason,
                     "next_attempt_at": None if planned.skip_reason else now})
    return Telling(told, rows)


def notify_key(kind: Any, facts: Any, key: Any) -> str:
    """The checked source key of a ``notify_user`` request."""
    if kind not in KINDS:
        raise ValidationError(f"«{kind}» — такого варианта нет.",
                              field="kind", key="choice.invalid",
                              params={"value": str(kind), "options": ", ".join(KINDS)})
    if not isinstance(facts, dict):
        raise ValidationError("Нужен объект JSON.", field="facts", key="object.invalid")
    if not isinstance(key, str) or not key.strip():
        raise ValidationError("Обязательное поле.", field="key", key="required")
    return f"{kind}:{key.strip()}"


def notification_ids(ids: Any) -> list[int]:
    if not isinstance(ids, list):
        raise ValidationError("Нужен список.", field="ids", key="list.invalid")
    try:
        return [int(i) for i in ids]
    except (TypeError, ValueError):
        raise ValidationError("Нужен список номеров уведомлений.", field="ids",
                              key="list.invalid") from None


def manager_change(data: Mapping[str, Any]) -> tuple[Any, Any]:
    """(old, new) manager of a ``deal_updated`` event, or (None, None) when it did not
    change.  Accepts ``changes.manager_id`` as ``{"from", "to"}`` or ``[old, new]``, and
    falls back to ``previous_manager_id`` / ``manager_id``."""
    change = (data.get("changes") or {}).get("manager_id")
    if isinstance(change, Mapping):
        return change.get("from"), change.get("to")
    if isinstance(change, (list, tuple)) and len(change) == 2:
        return change[0], change[1]
    if "previous_manager_id" in data and data.get("previous_manager_id") != data.get(
            "manager_id"):
        return data.get("previous_manager_id"), data.get("manager_id")
    return None, None


# --------------------------------------------------------------------------- messages (N2)


@dataclass(frozen=True)
class Message:
    channel: str
    address: str
    subject: str
    text: str


def client_message(channel: Any, address: Any, subject: Any, text: Any) -> Message:
    """A manager's message to a contact, checked field by field."""
    if channel not in MESSAGE_CHANNELS:
        raise ValidationError(f"«{channel}» — такого варианта нет.",
                              field="channel", key="choice.invalid",
                              params={"value": str(channel),
                                      "options": ", ".join(MESSAGE_CHANNELS)})
    body = str(text or "").strip()
    if not body:
        raise ValidationError("Сообщение пустое.", field="text", key="message.empty")
    if len(body) > MAX_TEXT:
        raise ValidationError(f"Не больше {MAX_TEXT} символов.", field="text", key="text.too_long",
                              params={"max": MAX_TEXT})
    head = " ".join(str(subject or "").split())
    if len(head) > MAX_SUBJECT:
        raise ValidationError(f"Не больше {MAX_SUBJECT} символов.", field="subject",
                              key="text.too_long", params={"max": MAX_SUBJECT})
    if not str(address or "").strip():
        raise ValidationError("Обязательное поле.", field="address", key="required")
    if channel == "email":
        where = normalise_email(address, "address") or ""
    elif channel == "sms":
        where = normalise_phone(address, "address") or ""
        if len(body) > SMS_LIMIT:
            raise ValidationError(f"В SMS помещается не больше {SMS_LIMIT} символов.",
                                  field="text", key="sms.too_long", params={"max": SMS_LIMIT})
    else:
        where = normalise_chat(address)
    return Message(channel, where, head, body)


def request_id(value: Any) -> str | None:
    """The caller's key of a message to a client: the same key sends once."""
    if value is not None and (not isinstance(value, str) or len(value) > 64):
        raise ValidationError("Не больше 64 символов.", field="request_id",
                              key="text.too_long", params={"max": 64})
    return value or None


def message_subject(message: Message) -> str:
    """An e-mail needs a subject line; the other channels have none."""
    return message.subject or ("Сообщение" if message.channel == "email" else "")


# --------------------------------------------------------------------------- deliveries


def idempotency_key(source_key: str, recipient_key: str, channel: str) -> str:
    """Stable for one delivery: the e-mail Message-ID is derived from it."""
    return f"{source_key}|{recipient_key}|{channel}"


def after_interruption(channel: str, attempts: int, max_attempts: int) -> tuple[str, str]:
    """Status and reason for a delivery found 'sending' after its lease ran out (the
    process died mid-send: whether the provider got it is unknown)."""
    if channel in RESEND_AFTER_INTERRUPTION and attempts < max_attempts:
        return "retrying", "interrupted mid-send; sent again with the same Message-ID"
    return "failed", ("interrupted mid-send: it may or may not have arrived; not repeated "
                      "automatically so that nobody gets it twice — retry by hand if needed")
