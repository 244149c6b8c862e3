"""The client list (C4, C6): its filters, columns and sort orders, and checking what a
person or a program asked for before any SQL is built.

Everything here is pure: the service turns a ``ListQuery`` into SQL (services/clients/
search.py), the gateway uses ``LIST_COLUMNS`` and ``validate_columns`` for the columns a
user chose.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.clients.domain.phones import normalize_phone, phone_search_key
from services.clients.domain.requisites import CLIENT_KINDS
from services.clients.domain.segments import segment_code
from services.clients.domain.text import shown
from services.kit import parse
from services.kit.contract.clients import (
    FILTERS,
    LIST_COLUMNS,
    MAX_IDS,
    MAX_NEGLECTED_DAYS,
    MAX_PER_PAGE,
)
from services.kit.errors import ValidationError

# Every column the list can show, in the default order of the column chooser.
MAX_QUERY = 200

_INN_PREFIX = re.compile(r"[0-9]{1,12}")
_SPACES = re.compile(r"\s+")


def search_text(value: str) -> str:
    """Text as the list searches and sorts it: case-folded, "ё" read as "е", single spaces.

    Russian writers use "е" for "ё" freely, so "Фёдор" and "Федор" must find each other.
    """
    return _SPACES.sub(" ", value.casefold().replace("ё", "е")).strip()


@dataclass(frozen=True)
class PhoneQuery:
    """A phone search: ``key`` is a substring of the stored numbers it should find;
    ``exact`` when it is a whole number (then an index lookup finds it, extensions too)."""

    key: str
    exact: bool


def phone_query(raw: str, field: str = "phone") -> PhoneQuery | None:
    """What a typed phone (whole or partial, any format) searches for; None if too short."""
    key = phone_search_key(raw)
    if key is None:
        return None
    try:
        exact = normalize_phone(key) == key
    except ValidationError:
        exact = False
    return PhoneQuery(key, exact)


@dataclass(frozen=True)
class ListQuery:
    """A checked request for one page of the client list.

    ``text`` is the one search box: a name, an INN or a phone, whichever matches.
    """

    text: str | None = None
    text_phone: PhoneQuery | None = None
    text_inn: str | None = None
    name: str | None = None
    inn: str | None = None
    phone: PhoneQuery | None = None
    manager_id: int | None = None
    kind: str | None = None
    city: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    neglected_days: int | None = None
    no_open_reminder: bool = False
    ids: tuple[int, ...] | None = None
    group_id: int | None = None
    segment: str | None = None
    sort: str = "name"
    descending: bool = False
    page: int = 1
    per_page: int = 50
    manager_order: tuple[int, ...] = ()

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def _given(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"Нужен текст, а не {type(value).__name__}.", field=field,
                              key="text.invalid")
    text = search_text(value)
    if len(text) > MAX_QUERY:
        raise ValidationError(f"Не больше {MAX_QUERY} символов.", field=field, key="text.too_long",
                              params={"max": MAX_QUERY})
    return text


def _int(value: object, field: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise ValidationError("Нужно целое число.", field=field, key="number.int")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValidationError(f"Нужно целое число, а не {shown(value)}.", field=field,
                              key="number.int") from None
    if number < low or (high is not None and number > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ValidationError(f"{number} — вне допустимого: {bounds}.", field=field,
                              key="number.min", params={"min": low, "max": high})
    return number


def _date(value: object, field: str) -> date:
    return parse.day(value, field)


def _flag(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValidationError(f"Нужно да или нет, а не {shown(value)}.", field=field,
                          key="bool.invalid")


def _inn_prefix(value: object, field: str = "inn") -> str:
    text = "".join(str(value).split())
    if not _INN_PREFIX.fullmatch(text):
        raise ValidationError(f"ИНН — до 12 цифр, а не {shown(value)}.", field=field,
                              key="inn.query", params={"value": shown(value)})
    return text


def _phone(value: object) -> PhoneQuery:
    if not isinstance(value, str):
        raise ValidationError("Нужен текст.", field="phone", key="text.invalid")
    found = phone_query(value)
    if found is None:
        raise ValidationError("Наберите хотя бы 4 цифры номера.", field="phone", key="phone.query",
                              params={"min": 4})
    return found


def _sort(value: object) -> tuple[str, bool]:
    """"name" or "-name" (descending)."""
    text = str(value or "name").strip()
    descending = text.startswith("-")
    column = text.lstrip("-")
    if column not in LIST_COLUMNS:
        raise ValidationError(f"Нет такого столбца {shown(column)}.", field="sort",
                              key="choice.invalid",
                              params={"value": shown(column), "options": ", ".join(LIST_COLUMNS)})
    return column, descending


def _general_search(value: object) -> dict[str, Any]:
    """The one search box: a name part always, an INN prefix and a phone when it can be."""
    text = _text(value, "q")
    if not text:
        return {}
    digits = "".join(text.split())
    found: dict[str, Any] = {"text": text}
    if _INN_PREFIX.fullmatch(digits):
        found["text_inn"] = digits
    found["text_phone"] = phone_query(text)
    return found


def parse_list_query(query: object = "", filters: Mapping[str, Any] | None = None,
                     sort: object = "name", page: object = 1, per_page: object = 50,
                     manager_order: object = ()) -> ListQuery:
    """Check a list request; each bad value is a ValidationError naming its filter.

    Blank filter values mean "not filtered", so a form can send every field.
    """
    filters = filters or {}
    if not isinstance(filters, Mapping):
        raise ValidationError("Нужен объект JSON.", field="filters", key="object.invalid")
    unknown = sorted(str(key) for key in filters if key not in FILTERS)
    if unknown:
        raise ValidationError("Нет такого фильтра.", field=unknown[0], key="filter.unknown")
    given = {key: value for key, value in filters.items() if _given(value)}
    checked: dict[str, Any] = _general_search(query) if _given(query) else {}
    if "name" in given:
        checked["name"] = _text(given["name"], "name") or None
    if "inn" in given:
        checked["inn"] = _inn_prefix(given["inn"])
    if "phone" in given:
        checked["phone"] = _phone(given["phone"])
    if "manager_id" in given:
        checked["manager_id"] = _int(given["manager_id"], "manager_id", 1)
    if "kind" in given:
        if given["kind"] not in CLIENT_KINDS:
            raise ValidationError(f"«{given['kind']}» — такого варианта нет.", field="kind",
                                  key="choice.invalid",
                                  params={"value": str(given["kind"]),
                                          "options": ", ".join(CLIENT_KINDS)})
        checked["kind"] = given["kind"]
    if "city" in given:
        checked["city"] = _text(given["city"], "city") or None
    for key in ("created_from", "created_to"):
        if key in given:
            checked[key] = _date(given[key], key)
    if checked.get("created_from") and checked.get("created_to") and \
            checked["created_from"] > checked["created_to"]:
        raise ValidationError("Период кончается раньше, чем начинается.", field="created_to",
                              key="period.end_before_start")
    if "neglected_days" in given:
        checked["neglected_days"] = _int(given["neglected_days"], "neglected_days", 1,
                                         MAX_NEGLECTED_DAYS)
    if "no_open_reminder" in given:
        checked["no_open_reminder"] = _flag(given["no_open_reminder"], "no_open_reminder")
    if "group_id" in given:
        checked["group_id"] = _int(given["group_id"], "group_id", 1)
    if "segment" in given:
        checked["segment"] = segment_code(given["segment"])
    if "ids" in filters and filters["ids"] is not None:
        checked["ids"] = _ids(filters["ids"])
    column, descending = _sort(sort)
    if not isinstance(manager_order, (list, tuple)):
        raise ValidationError("Нужен список номеров пользователей.", field="manager_order",
                              key="list.invalid")
    return ListQuery(**checked, sort=column, descending=descending,
                     page=_int(page, "page", 1, 100_000),
                     per_page=_int(per_page, "per_page", 1, MAX_PER_PAGE),
                     manager_order=tuple(_int(m, "manager_order", 1) for m in manager_order))


def _ids(value: object) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or len(value) > MAX_IDS:
        raise ValidationError(f"ids: a list of at most {MAX_IDS} client ids", field="ids",
                              key="list.too_long", params={"max": MAX_IDS})
    return tuple(sorted({_int(v, "ids", 1) for v in value}))
