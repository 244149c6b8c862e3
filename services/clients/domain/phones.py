"""Phone numbers and e-mail addresses as the CRM stores and searches them.

Stored form of a phone: E.164 ("+79161234567"), and when the number has an extension,
E.164 + ";ext=" + digits ("+74951234567;ext=123") — the RFC 3966 parameter, so the part
before ";" is always a dialable E.164 number, and ``phonenumbers`` parses the stored
form back to the same number (normalising is idempotent).
"""
from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from services.clients.domain.text import domain_ok, require_text, shown
from services.kit.errors import ValidationError

EXTENSION_SEPARATOR = ";ext="
MIN_SEARCH_DIGITS = 4  # fewer digits match a large share of all numbers
MAX_PHONE_INPUT = 100
MAX_EMAIL = 254  # RFC 5321 path limit
MAX_EMAIL_LOCAL = 64

# The start of a Russian number typed with its trunk prefix: "8 (916", "8-916", "8 916".
_RU_TRUNK_PREFIX = re.compile(r"^\s*8[\s(\-]")
_NON_DIGITS = re.compile(r"[^0-9]")
# dot-atom of RFC 5322 extended to Unicode letters: Cyrillic mailboxes exist (почта.рф).
_EMAIL_LOCAL = re.compile(r"[\w!#$%&'*+/=?^`{|}~-]+(\.[\w!#$%&'*+/=?^`{|}~-]+)*")


def normalize_phone(raw: object, region: str = "RU", field: str = "phone") -> str:
    """A phone as typed ("8 916 123-45-67", "+7 (495) 123-45-67 доб. 123") in stored form.

    Numbers without a country code are read as numbers of ``region``; "8" as the Russian
    trunk prefix and "8 10" as the international prefix are understood.  Numbers that do
    not exist in the numbering plan (wrong length, unassigned range) are refused.
    """
    text = require_text(raw, field).strip()
    if not text:
        raise ValidationError("Поле пустое.", field=field, key="required")
    if len(text) > MAX_PHONE_INPUT:
        raise ValidationError("Слишком длинно для номера телефона.", field=field,
                              key="phone.too_long")
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        raise ValidationError(f"{shown(raw)} — не номер телефона.", field=field,
                              key="phone.invalid", params={"value": shown(raw)}) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(f"{shown(raw)} — не номер телефона.", field=field,
                              key="phone.invalid", params={"value": shown(raw)})
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return e164 + EXTENSION_SEPARATOR + number.extension if number.extension else e164


def phone_base(stored: str) -> str:
    """The E.164 part of a stored phone, without the extension."""
    return stored.split(EXTENSION_SEPARATOR, 1)[0]


def phone_search_key(raw: str, region: str = "RU") -> str | None:
    """What to look for when someone types (part of) a phone number into a search box.

    The key is always a substring of the stored form of the numbers it should find, so
    one query serves both cases: ``stored_phone LIKE '%' || key || '%'``.
    - a full valid number, in any format -> its E.164 ("+79161234567"; extension dropped,
      so the search also finds the number stored with an extension);
    - a partial number of at least 4 digits -> its digits ("1234567" for "123-45-67");
      when typed with "+" or with the Russian trunk prefix "8 (" / "8-" / "8 ", the key is
      anchored as "+" + country code ("8 (916" -> "+7916", "+7 916" -> "+7916");
    - anything with fewer than 4 digits -> None (too broad to search for).
    Non-digit characters other than a leading "+" are ignored.
    """
    digits = _NON_DIGITS.sub("", raw)
    if len(digits) < MIN_SEARCH_DIGITS:
        return None
    try:
        return phone_base(normalize_phone(raw, region))
    except ValidationError:
        pass
    if raw.lstrip().startswith("+"):
        return "+" + digits
    if region == "RU" and _RU_TRUNK_PREFIX.match(raw):
        return "+7" + digits[1:]
    return digits


def normalize_email(raw: object, field: str = "email") -> str:
    """A single e-mail address, trimmed and lower-cased (so duplicates compare equal).

    Checks the shape (local@domain with a dotted domain and a real-looking TLD) rather
    than deliverability; internationalised domains ("почта.рф") are accepted and kept in
    Unicode, as people type them.
    """
    text = require_text(raw, field).strip().lower()
    if not text:
        raise ValidationError("Поле пустое.", field=field, key="required")
    if len(text) > MAX_EMAIL:
        raise ValidationError(f"Не больше {MAX_EMAIL} символов.", field=field, key="text.too_long",
                              params={"max": MAX_EMAIL})
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise ValidationError(f"{shown(raw)} — не адрес электронной почты.", field=field,
                              key="email.invalid", params={"value": shown(raw)})
    if len(local) > MAX_EMAIL_LOCAL or not _EMAIL_LOCAL.fullmatch(local):
        raise ValidationError(f"{shown(raw)} — не адрес электронной почты: ошибка до @.",
                              field=field, key="email.local", params={"value": shown(raw)})
    if not domain_ok(domain):
        raise ValidationError(f"{shown(raw)} — не адрес электронной почты: ошибка в домене.",
                              field=field, key="email.domain", params={"value": shown(raw)})
    return text
