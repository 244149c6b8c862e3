"""One way to show time, money, phones and numbers on every page and in every export.

The functions here are pure (the zone, the language and "now" are arguments), so each is
tested on its own; :func:`register` binds them to the request (the user's language, the
user's or the company's time zone) as Jinja filters."""
from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from markupsafe import Markup

from services.kit import clock

NARROW_NBSP = "\u202f"
DEFAULT_ZONE = "Europe/Moscow"
# The zones a user may choose for themselves (the company's is in the TIMEZONE setting).
USER_ZONES = ("Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg",
              "Asia/Omsk", "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk",
              "Asia/Yakutsk", "Asia/Vladivostok", "Asia/Magadan", "Asia/Kamchatka")
CURRENCY_SIGNS = {"RUB": "₽", "USD": "$", "EUR": "€", "CNY": "¥", "KZT": "₸", "BYN": "Br"}


# ------------------------------------------------------------------------------ time

def moment(value: Any, zone: tzinfo) -> datetime | None:
    """A service's ISO moment (or a datetime) in ``zone``; a naive one is taken as UTC,
    which is how the services store and send them."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(zone)


def format_date(value: Any, zone: ZoneInfo) -> str:
    """'2026-12-02' or a moment -> '02.12.2026' (a moment's day in the company's zone)."""
    if value in (None, ""):
        return ""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.strftime("%d.%m.%Y")
    text = str(value)
    if len(text) == 10:
        try:
            return date.fromisoformat(text).strftime("%d.%m.%Y")
        except ValueError:
            return text
    local = moment(value, zone)
    return local.strftime("%d.%m.%Y") if local else text


def format_datetime(value: Any, zone: ZoneInfo) -> str:
    """An ISO moment -> '02.12.2026 21:30' in ``zone``."""
    local = moment(value, zone)
    if local is None:
        return "" if value in (None, "") else str(value)
    return local.strftime("%d.%m.%Y %H:%M")


_UNITS: dict[str, dict[str, Any]] = {
    "ru": {"minute": ("минуту", "минуты", "минут"), "hour": ("час", "часа", "часов"),
           "day": ("день", "дня", "дней")},
    "en": {"minute": ("minute", "minutes"), "hour": ("hour", "hours"), "day": ("day", "days")},
}
_WORDS: dict[str, dict[str, str]] = {
    "ru": {"now": "только что", "future": "через {n} {unit}", "past": "{n} {unit} назад",
           "today": "сегодня, {time}", "tomorrow": "завтра, {time}", "yesterday": "вчера, {time}"},
    "en": {"now": "just now", "future": "in {n} {unit}", "past": "{n} {unit} ago",
           "today": "today, {time}", "tomorrow": "tomorrow, {time}",
           "yesterday": "yesterday, {time}"},
}


def plural(n: int, forms: tuple[str, ...], lang: str) -> str:
    """The word for ``n`` things: Russian has three forms (1 минуту, 2 минуты, 5 минут)."""
    if lang != "ru":
        return forms[0] if n == 1 else forms[1]
    if n % 10 == 1 and n % 100 != 11:
        return forms[0]
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return forms[1]
    return forms[2]


def relative(value: Any, zone: ZoneInfo, lang: str = "ru", now: datetime | None = None) -> str:
    """How far a moment is from now, as people say it: 'через 2 часа', '5 минут назад',
    'вчера, 14:30'; beyond a week, the date and time."""
    local = moment(value, zone)
    if local is None:
        return ""
    words = _WORDS.get(lang, _WORDS["ru"])
    units = _UNITS.get(lang, _UNITS["ru"])
    current = (now or clock.now()).astimezone(zone)
    seconds = (local - current).total_seconds()
    span = abs(seconds)
    if span < 60:
        return words["now"]
    if span < 12 * 3600:
        unit, n = ("minute", int(span // 60)) if span < 3600 else ("hour", int(span // 3600))
        key = "future" if seconds > 0 else "past"
        return words[key].format(n=n, unit=plural(n, units[unit], lang))
    days = (local.date() - current.date()).days
    at = local.strftime("%H:%M")
    named = {0: "today", 1: "tomorrow", -1: "yesterday"}
    if days in named:
        return words[named[days]].format(time=at)
    if abs(days) < 7:
        key = "future" if days > 0 else "past"
        return words[key].format(n=abs(days), unit=plural(abs(days), units["day"], lang))
    return local.strftime("%d.%m.%Y %H:%M")


def relative_hint(value: Any, zone: ZoneInfo, lang: str = "ru",
                  now: datetime | None = None) -> str:
    """The relative time in brackets beside an exact one, or nothing when it would only
    repeat the date (more than a week away)."""
    said = relative(value, zone, lang, now)
    return "" if not said or said == format_datetime(value, zone) else f"({said})"


def is_past(value: Any, now: datetime | None = None) -> bool:
    """Whether a moment (or a day: the end of it) has passed: overdue reminders, payments."""
    if value in (None, ""):
        return False
    current = now or clock.now()
    text = str(value)
    if len(text) == 10:
        try:
            return date.fromisoformat(text) < current.date()
        except ValueError:
            return False
    local = moment(value, UTC)
    return local is not None and local < current


def time_tag(value: Any, zone: ZoneInfo, lang: str = "ru",
             now: datetime | None = None) -> Markup:
    """A ``<time>`` element: relative text, the exact moment on hover and for machines."""
    local = moment(value, zone)
    if local is None:
        return Markup("")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        local.isoformat(), format_datetime(local, zone), relative(local, zone, lang, now))


# ---------------------------------------------------------------------------- numbers

def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _group(whole: str) -> str:
    sign = "-" if whole.startswith("-") else ""
    digits = whole.lstrip("-")
    groups: list[str] = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return sign + NARROW_NBSP.join(groups or ["0"])


def amount(value: Any) -> str:
    """'1234567.5' -> '1 234 567,50' (two decimals, a narrow no-break space groups)."""
    number = _decimal(value)
    if number is None:
        return "—" if value in (None, "") else str(value)
    whole, _, cents = f"{number.quantize(Decimal('0.01')):f}".partition(".")
    return _group(whole) + "," + cents


def figure(value: Any) -> Decimal:
    """A chart's or a sheet's number: an absent one counts as 0 (a bar of no height)."""
    return Decimal(str(value)) if value not in (None, "") else Decimal("0")


def chart_money(value: Any) -> str:
    """A sum as a chart labels it: ``amount``, with an absent one shown as 0,00."""
    return amount(figure(value))


def money(value: Any, currency: str | None = "RUB") -> str:
    """'120000.5' -> '120 000,50 ₽'; another currency by its sign or code."""
    shown = amount(value)
    if shown == "—" or not currency:
        return shown
    return f"{shown}{NARROW_NBSP}{CURRENCY_SIGNS.get(currency.upper(), currency.upper())}"


def number(value: Any) -> str:
    """A quantity or a price as typed, without trailing zeros: '10.000' -> '10',
    '85000.00' -> '85 000', '2.500' -> '2,5'."""
    parsed = _decimal(value)
    if parsed is None:
        return "" if value in (None, "") else str(value)
    text = f"{parsed:f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    return _group(whole) + ("," + fraction if fraction else "")


def plain_number(value: Any) -> str:
    """A number for an input's value: no grouping, a dot, no trailing zeros ('10.000' -> '10')."""
    parsed = _decimal(value)
    if parsed is None:
        return "" if value in (None, "") else str(value)
    text = f"{parsed:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def duration(seconds: Any) -> str:
    """A call's length: 180 -> '3:00', 3725 -> '1:02:05'."""
    if seconds in (None, ""):
        return ""
    total = max(int(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def phone(stored: Any, extension_word: str = "доб.") -> str:
    """An E.164 number (optionally ';ext=12') as people write it: '+7 915 777-33-21'."""
    if not stored:
        return ""
    number_part, _, extension = str(stored).partition(";ext=")
    try:
        shown = phonenumbers.format_number(phonenumbers.parse(number_part, "RU"),
                                           phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        shown = number_part
    return f"{shown} {extension_word} {extension}" if extension else shown


# --------------------------------------------------------------- bound to the request

def zone_of(user_zone: str | None, company_zone: str | None) -> ZoneInfo:
    """The user's zone when they chose one, else the company's, else Moscow."""
    for name in (user_zone, company_zone):
        if name:
            try:
                return ZoneInfo(str(name))
            except (KeyError, ValueError):
                continue
    return ZoneInfo(DEFAULT_ZONE)


def current_zone() -> ZoneInfo:
    from flask import current_app, g

    if "zone" not in g:
        g.zone = zone_of(_user_zone(), current_app.config["CRM"].get("TIMEZONE"))
    return g.zone  # type: ignore[no-any-return]


def typed_moment(value: str | None) -> str | None:
    """A time typed into a form (``datetime-local`` carries no zone) as the moment the user
    meant: in the zone the page showed them.  The services read a zoneless time in the
    company's zone, so a user who chose another would get a task hours off what they
    typed.  Anything that is not a zoneless ISO time goes on as it came: the service names
    the field in its error."""
    if not value:
        return value
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    if stamp.tzinfo is not None:
        return value
    return stamp.replace(tzinfo=current_zone()).isoformat()


def _user_zone() -> str | None:
    from flask import g

    from gateway.auth import user_setting  # auth's pages use these filters too

    if g.get("user") is None or g.get("db") is None:
        return None
    value = user_setting("timezone")
    return str(value) if value else None


def _lang() -> str:
    from flask import g

    return str(g.get("lang", "ru"))


def register(app: Any) -> None:
    """Every filter the templates use to show a value."""
    filters = {
        "money": money, "amount": amount, "number": number, "plain_number": plain_number,
        "duration": duration,
        "phone": lambda v: phone(v, "доб." if _lang() == "ru" else "ext."),
        "date": lambda v: format_date(v, current_zone()),
        "datetime": lambda v: format_datetime(v, current_zone()),
        "local_time": lambda v, with_time=True: (format_datetime(v, current_zone()) if with_time
                                                 else format_date(v, current_zone())),
        "relative": lambda v: relative(v, current_zone(), _lang()),
        "relative_hint": lambda v: relative_hint(v, current_zone(), _lang()),
        "when": lambda v: time_tag(v, current_zone(), _lang()),
        "past": is_past,
    }
    for name, function in filters.items():
        app.add_template_filter(function, name)
    app.add_template_global(lambda: clock.now(current_zone()), "local_now")

