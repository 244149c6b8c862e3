"""Pure rules about clients and their contacts: names, input checks, history, duplicates."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from services.clients.domain.phones import normalize_email, normalize_phone, phone_base
from services.clients.domain.requisites import CLIENT_KINDS
from services.clients.domain.text import (
    clean_text,
    domain_ok,
    is_blank,
    one_of,
    require_text,
    shown,
)
from services.kit.errors import ValidationError

NAME_LIMIT = 255
ADDRESS_LIMIT = 500
WEBSITE_LIMIT = 2000
MAX_CONTACT_PHONES = 20
MAX_CONTACT_EMAILS = 20
CLIENT_FIELDS = ("name", "kind", "website", "address")
CONTACT_FIELDS = ("name", "position", "phones", "emails")
AUTO_NAME = {"ru": "Клиент №{n}", "en": "Client #{n}"}

_HAS_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def auto_name(sequence_number: int, lang: str = "ru") -> str:
    """The name a client gets when created without one: "Клиент №1042" / "Client #1042"."""
    is_int = isinstance(sequence_number, int) and not isinstance(sequence_number, bool)
    if not is_int or sequence_number < 1:
        raise ValidationError(f"Нужен номер больше нуля, а не {shown(sequence_number)}.",
                              field="sequence_number", key="number.min", params={"min": 1})
    return AUTO_NAME[one_of(lang, "lang", AUTO_NAME)].format(n=sequence_number)


def normalize_website(raw: object, field: str = "website") -> str | None:
    """A client's site as a clickable http(s) URL: "Example.ru" -> "https://example.ru".

    A missing scheme means https (what almost every site serves today).  Only http and
    https are accepted, so a stored link can never be "javascript:..." or a file path.
    """
    text = require_text(raw, field).strip()
    if not text:
        return None
    if len(text) > WEBSITE_LIMIT or any(ch.isspace() for ch in text):
        raise ValidationError(f"{shown(raw)} — не адрес сайта.", field=field, key="url.invalid",
                              params={"value": shown(raw)})
    if not _HAS_SCHEME.match(text):
        text = "https://" + text
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValidationError(f"{shown(raw)} — не адрес сайта.", field=field, key="url.invalid",
                              params={"value": shown(raw)}) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError("Допустимы только адреса http и https.", field=field,
                              key="url.scheme")
    if parts.username is not None or host is None or not domain_ok(host):
        raise ValidationError(f"{shown(raw)} — не адрес сайта.", field=field, key="url.invalid",
                              params={"value": shown(raw)})
    netloc = host if port is None else f"{host}:{port}"
    path = "" if parts.path == "/" else parts.path
    return urlunsplit((parts.scheme.lower(), netloc, path, parts.query, parts.fragment))


def _check_kind(value: object) -> str:
    return one_of(value, "kind", CLIENT_KINDS)


def _refuse_unknown(data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise ValidationError("Такого поля нет.", field=unknown[0], key="field.unknown")


def _clean_client_field(key: str, value: object) -> str | None:
    if key == "kind":
        return _check_kind(value)
    if key == "website":
        return None if value is None else normalize_website(value)
    return clean_text(value, key, NAME_LIMIT if key == "name" else ADDRESS_LIMIT)


def validate_client_create(data: Mapping[str, Any]) -> dict[str, str | None]:
    """Fields of a new client (``CLIENT_FIELDS``), every key present, None when not given.

    ``kind`` is required.  A None name means "name it": the caller assigns
    ``auto_name(sequence_number)`` once the number is known.
    """
    _refuse_unknown(data, CLIENT_FIELDS)
    if is_blank(data.get("kind")):
        raise ValidationError("Обязательное поле.", field="kind", key="required")
    return {key: _clean_client_field(key, data.get(key)) for key in CLIENT_FIELDS}


def validate_client_update(data: Mapping[str, Any]) -> dict[str, str | None]:
    """The changed fields of a client; only the keys given, blank ones become None.

    A name may be changed but not erased: every client has a name.
    """
    _refuse_unknown(data, CLIENT_FIELDS)
    cleaned = {key: _clean_client_field(key, value) for key, value in data.items()}
    if "name" in cleaned and cleaned["name"] is None:
        raise ValidationError("Название не может быть пустым.", field="name", key="required")
    return cleaned


def is_empty(value: object) -> bool:
    """Blank text, None and empty collections carry no information."""
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return not value
    return is_blank(value)


def diff_fields(old: Mapping[str, Any], new: Mapping[str, Any]
                ) -> list[tuple[str, Any, Any]]:
    """(field, old value, new value) for each field that changed, for the change history.

    A key missing on one side counts as None, and None, "" and [] are the same "empty",
    so re-saving a form with a blank field does not write a history entry.  Order: the
    old record's fields first, then fields only the new one has.
    """
    keys = list(old) + [key for key in new if key not in old]
    changes = []
    for key in keys:
        before, after = old.get(key), new.get(key)
        if is_empty(before) and is_empty(after):
            continue
        if before != after:
            changes.append((key, before, after))
    return changes


def _as_list(value: object, field: str, limit: int) -> list[object]:
    """A list of values; a single string (one phone typed in a quick form) is one item."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise ValidationError("Нужен список.", field=field, key="list.invalid")
    if len(value) > limit:
        raise ValidationError(f"Не больше {limit} элементов.", field=field, key="list.too_long",
                              params={"max": limit})
    return list(value)


def _unique_cleaned(values: list[object], field: str,
                    clean: Callable[..., str]) -> list[str]:
    """Each non-blank item cleaned by ``clean``, duplicates (after cleaning) dropped."""
    seen: dict[str, None] = {}
    for index, value in enumerate(values):
        if not is_blank(value):
            seen.setdefault(clean(value, field=f"{field}.{index}"), None)
    return list(seen)


def validate_contact(data: Mapping[str, Any], *, quick: bool = False) -> dict[str, Any]:
    """A contact person: {"name", "position", "phones": [E.164...], "emails": [...]}.

    ``quick`` is the "name + phone" form on the client page: a contact created there
    must be reachable, so it needs at least one phone or e-mail.  Phones are compared
    after normalisation, so "8 916 123-45-67" and "+79161234567" are stored once.
    """
    _refuse_unknown(data, CONTACT_FIELDS)
    name = clean_text(data.get("name"), "name", NAME_LIMIT)
    phones = _unique_cleaned(_as_list(data.get("phones"), "phones", MAX_CONTACT_PHONES),
                             "phones", normalize_phone)
    emails = _unique_cleaned(_as_list(data.get("emails"), "emails", MAX_CONTACT_EMAILS),
                             "emails", normalize_email)
    if name is None:
        # Someone known only by a phone or an address is still a contact: the number
        # names them until a name is learned.
        if not phones and not emails:
            raise ValidationError("Обязательное поле.", field="name", key="required")
        name = phones[0] if phones else emails[0]
    if quick and not phones and not emails:
        raise ValidationError("Нужен телефон или e-mail.", field="phones",
                              key="contact.no_channel")
    return {"name": name, "position": clean_text(data.get("position"), "position",
                                                 NAME_LIMIT),
            "phones": phones, "emails": emails}


def _phone_key(raw: object) -> str | None:
    # Stored phones are already normalised; a legacy value that no longer parses must
    # not stop the duplicate check, it just cannot match anything.
    try:
        return "phone:" + phone_base(normalize_phone(raw))
    except ValidationError:
        return None


def duplicate_keys(client: Mapping[str, Any], contacts: Iterable[Mapping[str, Any]]
                   ) -> set[str]:
    """Keys two clients share when they are probably the same: "inn:<INN>", "phone:<E.164>".

    ``client`` may carry "inn" and (for a private person) "phone"; each contact carries
    "phones".  Extensions are dropped: two clients behind one switchboard number are
    worth a look by a person, and flagging never merges anything by itself.
    """
    keys: set[str] = set()
    inn = client.get("inn")
    if isinstance(inn, str) and inn.strip():
        keys.add("inn:" + "".join(inn.split()))
    phones = [client.get("phone")] + [p for c in contacts for p in c.get("phones") or ()]
    keys.update(key for key in map(_phone_key, phones) if key)
    return keys


def merge_plan(survivor: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """The survivor's fields after merging ``other`` into it.

    Per field the survivor's non-empty value wins, else the other's value is taken, so
    a merge never loses information the survivor lacked and never overwrites what it
    has.  Pass records of the same shape (same kind); ``diff_fields(survivor, plan)`` is
    then the history entry of the merge.
    """
    keys = list(survivor) + [key for key in other if key not in survivor]
    return {key: other.get(key) if is_empty(survivor.get(key)) else survivor[key]
            for key in keys}


# Fields of a client record that are about who looks after it, not about the company.
ASSIGNMENT_FIELDS = ("city", "manager_id")
CITY_LIMIT = 200
SOURCES = ("ui", "api", "import", "merge", "event", "demo")


def check_source(value: object) -> str:
    """Where a change came from, as the history shows it."""
    return one_of(value, "source", SOURCES)


def _manager_id(value: object) -> int | None:
    if is_blank(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        number = int(value)
    else:
        raise ValidationError(f"{shown(value)} — не номер пользователя.", field="manager_id",
                              key="id.invalid", params={"value": shown(value)})
    if number < 1:
        raise ValidationError(f"{number} — не номер пользователя.", field="manager_id",
                              key="id.invalid", params={"value": number})
    return number


def validate_assignment(data: Mapping[str, Any]) -> dict[str, Any]:
    """City and responsible manager, only the keys given; blank ones become None."""
    cleaned: dict[str, Any] = {}
    if "city" in data:
        cleaned["city"] = clean_text(data["city"], "city", CITY_LIMIT)
    if "manager_id" in data:
        cleaned["manager_id"] = _manager_id(data["manager_id"])
    return cleaned


def split_client_input(data: object) -> tuple[dict[str, Any], dict[str, Any],
                                               dict[str, Any], list[Any]]:
    """A create/update request as (client fields, assignment, requisites, contacts).

    Requisites may come at the top level ({"inn": ...}, as forms and files send them) or
    nested under "requisites" — the only way to give a legal entity's full name or a
    person's registered address, whose keys ("name", "address") are client fields at the
    top level.  "source" is accepted and ignored here (older callers put it in data).
    """
    if not isinstance(data, Mapping):
        raise ValidationError("Нужен объект JSON.", field="client", key="object.invalid")
    own = {k: data[k] for k in CLIENT_FIELDS if k in data}
    assignment = {k: data[k] for k in ASSIGNMENT_FIELDS if k in data}
    nested = data.get("requisites")
    nested = {} if nested is None else nested
    if not isinstance(nested, Mapping):
        raise ValidationError("Нужен объект JSON.", field="requisites", key="object.invalid")
    contacts = data.get("contacts")
    contacts = [] if contacts is None else contacts
    if not isinstance(contacts, list):
        raise ValidationError("Нужен список.", field="contacts", key="list.invalid")
    skip = {*CLIENT_FIELDS, *ASSIGNMENT_FIELDS, "requisites", "contacts", "source"}
    requisites = {k: v for k, v in data.items() if k not in skip}
    requisites.update(nested)
    return own, assignment, requisites, contacts


def merge_contact_update(current: Mapping[str, Any], data: object) -> dict[str, Any]:
    """A contact after a partial update: the keys given replace the current ones."""
    if not isinstance(data, Mapping):
        raise ValidationError("Нужен объект JSON.", field="contact", key="object.invalid")
    _refuse_unknown(data, CONTACT_FIELDS)
    return validate_contact({key: data.get(key, current.get(key)) for key in CONTACT_FIELDS})
