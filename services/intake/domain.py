"""Pure rules of the inbox: what a lead is made of, how a bot is told from a person, who
a lead goes to, when it is late, and which mail makes a lead at all."""
from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import phonenumbers

from services.kit.errors import ValidationError

SOURCES = ("form", "api", "email", "call", "questionnaire")
SOURCE_NAMES = {"form": "Форма на сайте", "api": "API", "email": "Письмо",
                "call": "Звонок", "questionnaire": "Анкета"}
STATUSES = ("new", "accepting", "accepted", "attached", "rejected", "spam")
OPEN_STATUSES = ("new", "accepting")
# The lead fields a form field may fill; anything else goes to ``extra``.
LEAD_FIELDS = ("name", "phone", "email", "company", "inn", "message")
FIELD_TYPES = ("text", "tel", "email", "textarea")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
LIMITS = {"name": 300, "phone": 50, "email": 320, "company": 300, "inn": 12,
          "message": 10_000, "page_url": 2000, "external_id": 200}
# What a lead's source is called on the deal it becomes (the deals contract's sources).
DEAL_SOURCES = {"form": "web_form", "api": "api", "email": "email", "call": "call",
                "questionnaire": "questionnaire"}
DEAL_DETAIL_LIMIT = 500
_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")
DEFAULT_SETTINGS: dict[str, Any] = {"duty_user_ids": [], "head_user_ids": [],
                                    "admin_user_ids": [], "response_minutes": 15,
                                    "mail_flood_limit": 20, "mail_flood_minutes": 10,
                                    "form_ip_per_minute": 30, "form_per_minute": 600,
                                    # failed submissions from one address to one form in
                                    # CAPTCHA_WINDOW before a captcha is asked (0: never)
                                    "captcha_after": 3}


def _text(data: Mapping[str, Any], key: str, field: str | None = None) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValidationError(f"Поле «{key}» должно быть строкой.", field=field or key,
                              key="lead.not_text", params={"field": key})
    text = str(value).strip()
    limit = LIMITS.get(key, 2000)
    if len(text) > limit:
        raise ValidationError(f"Поле «{key}» длиннее {limit} символов.", field=field or key,
                              key="lead.too_long", params={"field": key, "limit": limit})
    return text


def to_e164(raw: str, region: str = "RU") -> str | None:
    """A phone in any format as E.164, or None when it is no phone number."""
    digits = re.sub(r"[^\d+]", "", raw or "")
    if len(re.sub(r"\D", "", digits)) < 5:
        return None
    if digits.startswith("8") and len(digits) == 11:
        digits = "+7" + digits[1:]
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_lead(data: Any, prefix: str = "") -> dict[str, Any]:
    """A lead's details as given, checked: text lengths, a phone that is a phone, an
    e-mail that is an address, at least one way to answer.  ``prefix`` names fields as
    the caller sent them (``fields.`` for a form)."""
    if not isinstance(data, Mapping):
        raise ValidationError("Ожидался объект с полями заявки.", field="body",
                              key="lead.body")
    cleaned: dict[str, Any] = {key: _text(data, key, prefix + key) for key in LEAD_FIELDS}
    cleaned["phone_e164"] = None
    if cleaned["phone"]:
        cleaned["phone_e164"] = to_e164(cleaned["phone"])
        if cleaned["phone_e164"] is None:
            raise ValidationError("Это не похоже на номер телефона.", field=prefix + "phone",
                                  key="lead.phone", params={"value": cleaned["phone"]})
    if cleaned["email"]:
        cleaned["email"] = cleaned["email"].lower()
        if not _EMAIL.match(cleaned["email"]):
            raise ValidationError("Это не похоже на адрес электронной почты.",
                                  field=prefix + "email", key="lead.email",
                                  params={"value": cleaned["email"]})
    if cleaned["inn"] and not re.fullmatch(r"\d{10}|\d{12}", cleaned["inn"]):
        raise ValidationError("ИНН — 10 или 12 цифр.", field=prefix + "inn", key="lead.inn")
    if not (cleaned["phone"] or cleaned["email"]):
        raise ValidationError("Укажите телефон или e-mail, чтобы мы могли ответить.",
                              field=prefix + "phone", key="lead.no_contact")
    return cleaned


def clean_marketing(data: Mapping[str, Any]) -> dict[str, Any]:
    """UTM tags and the page URL: the lead's (and later the deal's) source."""
    utm = {}
    for key in UTM_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            utm[key] = value.strip()[:200]
    return {"utm": utm, "page_url": _web_address(data.get("page_url")),
            "referrer": _web_address(data.get("referrer"))}


def _web_address(value: Any) -> str:
    """An http(s) address as given, or "" (anything else is no address of a page)."""
    address = value.strip()[:LIMITS["page_url"]] if isinstance(value, str) else ""
    return address if re.match(r"^https?://", address) else ""


def deal_source(lead: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The deal's ``source`` and ``source_detail`` for an accepted lead (a lead row as
    a dict): where it came from, its UTM tags, page, referrer, form and lead ids, so
    analytics can count deals by source.  Empty values are left out."""
    detail = {**(lead.get("utm") or {}), "page_url": lead.get("page_url"),
              "referrer": lead.get("referrer"), "lead_id": lead.get("id"),
              "form_id": lead.get("source_ref") if lead.get("source") == "form" else None}
    return (DEAL_SOURCES.get(str(lead.get("source")), "manual"),
            {key: str(value)[:DEAL_DETAIL_LIMIT] for key, value in detail.items()
             if value not in (None, "")})


# -- forms ----------------------------------------------------------------------------

def clean_form(data: Any) -> dict[str, Any]:
    """A form as the administrator describes it: fields (name, label, type, required,
    maps_to), the consent text, the minimum fill time, who gets its leads."""
    if not isinstance(data, Mapping):
        raise ValidationError("Ожидался объект формы.", field="body", key="form.body")
    name = _text(data, "name")
    if not name:
        raise ValidationError("Укажите название формы.", field="name", key="form.name")
    consent = data.get("consent_text")
    if not isinstance(consent, str) or len(consent.strip()) < 10:
        raise ValidationError("Нужен текст согласия на обработку персональных данных "
                              "(152-ФЗ).", field="consent_text", key="form.consent_text")
    raw_fields = data.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise ValidationError("Добавьте хотя бы одно поле.", field="fields", key="form.fields")
    fields, seen = [], set()
    for i, f in enumerate(raw_fields):
        if not isinstance(f, Mapping):
            raise ValidationError("Поле формы — объект.", field=f"fields.{i}",
                                  key="form.field")
        fname = str(f.get("name") or "").strip()
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", fname) or fname in seen or fname in (
                "consent", "website", "token"):
            raise ValidationError("Имя поля: латиница, цифры, «_», без повторов.",
                                  field=f"fields.{i}.name", key="form.field_name")
        seen.add(fname)
        maps_to = f.get("maps_to") or (fname if fname in LEAD_FIELDS else "extra")
        if maps_to not in (*LEAD_FIELDS, "extra"):
            raise ValidationError(f"Поле можно связать с: {', '.join(LEAD_FIELDS)}.",
                                  field=f"fields.{i}.maps_to", key="form.maps_to")
        ftype = f.get("type") or "text"
        if ftype not in FIELD_TYPES:
            raise ValidationError(f"Тип поля: {', '.join(FIELD_TYPES)}.",
                                  field=f"fields.{i}.type", key="form.field_type")
        fields.append({"name": fname, "label": str(f.get("label") or fname)[:200],
                       "type": ftype, "required": bool(f.get("required")),
                       "maps_to": maps_to})
    if not any(f["maps_to"] in ("phone", "email") for f in fields):
        raise ValidationError("Форме нужно поле телефона или e-mail.", field="fields",
                              key="form.no_contact_field")
    min_fill = data.get("min_fill_seconds", 3)
    if not isinstance(min_fill, int) or isinstance(min_fill, bool) or not 0 <= min_fill <= 600:
        raise ValidationError("Минимальное время заполнения: 0–600 секунд.",
                              field="min_fill_seconds", key="form.min_fill")
    return {"name": name, "fields": fields, "consent_text": consent.strip(),
            "min_fill_seconds": min_fill,
            "assignee_ids": ids(data.get("assignee_ids") or [], "assignee_ids"),
            "allowed_origins": [str(o).strip().rstrip("/")[:300]
                                for o in data.get("allowed_origins") or [] if str(o).strip()]}


def ids(values: Any, field: str) -> list[int]:
    if not isinstance(values, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise ValidationError("Ожидался список идентификаторов.", field=field, key="lead.ids")
    return list(dict.fromkeys(values))


def map_submission(form_fields: Sequence[Mapping[str, Any]], values: Mapping[str, Any]
                   ) -> tuple[dict[str, Any], dict[str, str]]:
    """A submission's values onto the lead (``fields.<name>`` named in errors); what
    maps to nothing is kept as ``extra``."""
    lead: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for f in form_fields:
        value = values.get(f["name"])
        text = value.strip() if isinstance(value, str) else ""
        if f["required"] and not text:
            raise ValidationError(f"Заполните поле «{f['label']}».",
                                  field=f"fields.{f['name']}", key="form.required",
                                  params={"label": f["label"]})
        if f["maps_to"] == "extra":
            if text:
                extra[f["label"]] = text[:2000]
        elif text:
            lead[f["maps_to"]] = (lead[f["maps_to"]] + "\n" + text) if f["maps_to"] in lead \
                else text
    return lead, extra


@dataclass(frozen=True)
class Verdict:
    bot: bool
    reason: str | None = None


def judge_submission(honeypot: Any, filled_seconds: float | None, min_seconds: int) -> Verdict:
    """A person leaves the hidden field empty and takes a moment to type; a bot does
    neither.  ``filled_seconds`` None: the signed timestamp was missing or forged."""
    if isinstance(honeypot, str) and honeypot.strip():
        return Verdict(True, "honeypot")
    if filled_seconds is None:
        return Verdict(True, "no_token")
    if filled_seconds < min_seconds:
        return Verdict(True, "too_fast")
    return Verdict(False)


# -- assignment and the first-response clock ---------------------------------------------

def next_assignee(candidates: Sequence[int], last: int | None) -> int | None:
    """Round robin: the one after ``last`` (the first when ``last`` left the list)."""
    if not candidates:
        return None
    if last is not None and last in candidates:
        return candidates[(list(candidates).index(last) + 1) % len(candidates)]
    return candidates[0]


def respond_by(received: datetime, minutes: int) -> datetime:
    return received + response_time(minutes)


def response_time(minutes: int) -> timedelta:
    """How long an entry may wait for its first response (a minute at least)."""
    return timedelta(minutes=max(1, int(minutes)))


def clean_settings(current: Mapping[str, Any], changes: Any) -> dict[str, Any]:
    if not isinstance(changes, Mapping):
        raise ValidationError("Ожидался объект настроек.", field="body", key="settings.body")
    merged = {**DEFAULT_SETTINGS, **current}
    for key, value in changes.items():
        if key not in DEFAULT_SETTINGS:
            raise ValidationError(f"Нет такой настройки: {key}.", field=key,
                                  key="settings.unknown")
        if key.endswith("_ids"):
            merged[key] = ids(value, key)
        elif key == "captcha_after" and value == 0:
            merged[key] = 0
        elif isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 100_000:
            merged[key] = value
        else:
            raise ValidationError("Целое число от 1 до 100000.", field=key,
                                  key="settings.number")
    return merged


def window_start(now: datetime, seconds: int) -> datetime:
    """The fixed window a hit at ``now`` counts in."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=now.tzinfo)


# -- API keys ---------------------------------------------------------------------------

def new_api_key() -> str:
    return "lk_" + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    """SHA-256 suffices: the key is 256 random bits, not a password someone chose."""
    return hashlib.sha256(key.encode()).hexdigest()


# -- mail -----------------------------------------------------------------------------

def is_auto_reply(headers: Mapping[str, str]) -> bool:
    """RFC 3834 and the usual list/bulk markers: such mail never makes a lead."""
    lowered = {k.lower(): (v or "").strip().lower() for k, v in headers.items()}
    if lowered.get("auto-submitted", "no") not in ("", "no"):
        return True
    if lowered.get("precedence") in ("bulk", "junk", "list", "auto_reply"):
        return True
    return any(k in lowered for k in ("x-autoreply", "x-autorespond", "list-id",
                                      "list-unsubscribe"))


_MSGID = re.compile(r"<[^<>\s]+>")


def thread_ids(in_reply_to: str | None, references: str | None) -> list[str]:
    """The Message-IDs a message answers, nearest first (In-Reply-To, then References
    from the latest back)."""
    found = _MSGID.findall(in_reply_to or "")
    found += list(reversed(_MSGID.findall(references or "")))
    return list(dict.fromkeys(found))


def who(lead: Mapping[str, Any]) -> str:
    return (lead.get("name") or lead.get("company") or lead.get("phone")
            or lead.get("email") or f"#{lead.get('id')}")


# -- IMAP mailboxes ---------------------------------------------------------------------
SECURITY = ("ssl", "starttls", "none")
MIN_POLL_SECONDS, MAX_POLL_SECONDS = 5, 86_400
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,253}$")
_FOLDER = re.compile(r"^[^\x00-\x1f\"\\]{1,200}$")


def _mailbox_error(field: str, message: str, key: str, **params: Any) -> ValidationError:
    return ValidationError(message, field=field, key=key, params=params)


def clean_mailbox(data: Any, *, has_password: bool = False) -> dict[str, Any]:
    """A mailbox as the administrator gave it, checked.  The password may be left empty
    when one is stored already (``has_password``): the form never shows it back, so an
    empty one means "keep"; it is then absent from the result."""
    if not isinstance(data, Mapping):
        raise _mailbox_error("body", "Ожидался объект с полями ящика.", "mailbox.body")
    text = {k: str(data.get(k) or "").strip() for k in
            ("name", "host", "login", "folder", "move_to", "security")}
    if not text["name"] or len(text["name"]) > 200:
        raise _mailbox_error("name", "Назовите ящик (до 200 символов).", "mailbox.name")
    if not _HOST.fullmatch(text["host"]):
        raise _mailbox_error("host", "Укажите адрес IMAP-сервера.", "mailbox.host")
    security = text["security"] or "ssl"
    if security not in SECURITY:
        raise _mailbox_error("security", "Защита соединения: ssl, starttls или none.",
                             "mailbox.security")
    port = _whole(data.get("port"), 993 if security == "ssl" else 143)
    if port is None or not 0 < port < 65536:
        raise _mailbox_error("port", "Порт — число от 1 до 65535.", "mailbox.port")
    if not text["login"] or len(text["login"]) > 320:
        raise _mailbox_error("login", "Укажите логин ящика.", "mailbox.login")
    password = data.get("password")
    if password is not None and not isinstance(password, str):
        raise _mailbox_error("password", "Пароль — строка.", "mailbox.password")
    if not password and not has_password:
        raise _mailbox_error("password", "Укажите пароль ящика.", "mailbox.password")
    if password and len(password) > 500:
        raise _mailbox_error("password", "Пароль длиннее 500 символов.", "mailbox.password")
    folder = text["folder"] or "INBOX"
    for field, value in (("folder", folder), ("move_to", text["move_to"])):
        if value and not _FOLDER.fullmatch(value):
            raise _mailbox_error(field, "Недопустимое имя папки.", "mailbox.folder",
                                 name=value[:50])
    if text["move_to"] == folder:
        raise _mailbox_error("move_to", "Папка для разобранных писем должна отличаться "
                             "от читаемой.", "mailbox.move_to")
    interval = _whole(data.get("interval_seconds"), 60)
    if interval is None or not MIN_POLL_SECONDS <= interval <= MAX_POLL_SECONDS:
        raise _mailbox_error("interval_seconds",
                             f"Интервал — от {MIN_POLL_SECONDS} до {MAX_POLL_SECONDS} секунд.",
                             "mailbox.interval", min=MIN_POLL_SECONDS, max=MAX_POLL_SECONDS)
    user_id = data.get("user_id")
    if user_id in (None, "", 0, "0"):
        user_id = None
    else:
        user_id = _whole(user_id, None)
        if user_id is None or user_id <= 0:
            raise _mailbox_error("user_id", "Менеджер ящика не найден.", "mailbox.user")
    cleaned: dict[str, Any] = {
        "name": text["name"], "host": text["host"], "port": port, "security": security,
        "login": text["login"], "folder": folder, "move_to": text["move_to"] or None,
        "interval_seconds": interval, "user_id": user_id,
        "active": data.get("active", True) not in (False, "0", "off", "false", "")}
    if password:
        cleaned["password"] = password
    return cleaned


def _whole(value: Any, default: int | None) -> int | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def uids_to_take(found: Sequence[int], unseen: Sequence[int], last_uid: int | None,
                 done: Sequence[int], batch: int) -> list[int]:
    """Which messages of a folder to read now, oldest first.  After the first poll every
    message above the last one read (a person may have opened it in a mail client first:
    it is still ours); on the first poll only the unseen ones (the years of mail already
    in the box are no new enquiries).  Messages committed before (``done``) are left out:
    those are only flagged again."""
    skip = set(done)
    wanted = set(unseen) if last_uid is None else \
        {u for u in found if u > last_uid} | set(unseen)
    return sorted(u for u in wanted if u not in skip)[:batch]


# Messages a mailbox poll refuses: recorded (never read again) and left unread for a person.
MAIL_REFUSALS = ("too_big", "malformed", "refused")


# -- the self-hosted captcha ------------------------------------------------------------
CAPTCHA_WINDOW = 600  # seconds over which a form's failures from one address are counted
CAPTCHA_MAX_AGE = 900  # a question must be answered within this many seconds


def needs_captcha(failures: int, after: int) -> bool:
    """After ``after`` failed submissions (bot-like or refused) from one address to one
    form, every further submission from it must answer a question; 0 turns this off."""
    return after > 0 and failures >= after


def captcha_question(rng: secrets.SystemRandom | None = None) -> tuple[str, int]:
    """An arithmetic question asked in words and digits: plain text, so a screen reader
    reads it as it is (the accessible alternative is the captcha itself), no image a
    person with low vision cannot see, no outside service."""
    rng = rng or secrets.SystemRandom()
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    if rng.random() < 0.5 or a < b:
        return f"Сколько будет {a} плюс {b}? Ответ — числом.", a + b
    return f"Сколько будет {a} минус {b}? Ответ — числом.", a - b


def captcha_answer(given: Any) -> int | None:
    """What a person typed as the answer: digits with spaces around, or nothing usable."""
    if isinstance(given, int) and not isinstance(given, bool):
        return given
    text = str(given or "").strip()
    if re.fullmatch(r"-?\d{1,3}", text):
        return int(text)
    return None


def an_id(value: Any, field: str) -> int:
    """A positive integer id from RPC input, or a ValidationError naming ``field``."""
    number = None
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            number = int(value)
        except ValueError:
            number = None
    if number is None or number <= 0:
        raise ValidationError(f"{field}: ожидался идентификатор.", field=field,
                              key="id.invalid", params={"value": str(value)[:50]})
    return number


def leased(plan: Mapping[str, Any] | None, now: datetime) -> bool:
    """An accept someone is running now (its lease not yet over)."""
    until = (plan or {}).get("lease_until")
    return bool(until) and datetime.fromisoformat(str(until)) > now
