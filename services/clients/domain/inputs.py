"""Small checks of what the clients service's entrypoints receive: the language of
generated names, a form's version, an uploaded file, the contacts given with a new client,
an event's timestamp.  Pure: no sessions, no nameko."""
from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from services.clients.domain.clients import AUTO_NAME, validate_contact
from services.clients.domain.text import one_of
from services.clients.models import Client
from services.kit.errors import Conflict, ValidationError
from services.kit.parse import identifier


def check_lang(lang: object) -> str:
    return one_of(lang, "lang", AUTO_NAME)


def check_version(client: Client, version: object) -> None:
    """Optimistic locking: a form saved over someone else's newer change is refused."""
    if version is not None and identifier(version, "version") != client.version:
        raise Conflict(f"client {client.id} was changed by someone else; reload it",
                       entity="client", id=client.id, version=client.version)


def decode_file(content_b64: object) -> bytes:
    if not isinstance(content_b64, str):
        raise ValidationError("Нужно содержимое файла в base64.", field="file", key="file.base64")
    try:
        return base64.b64decode(content_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("Содержимое файла — не base64.", field="file",
                              key="file.base64") from None


def first_contact(index: int, data: object) -> dict[str, Any]:
    """A contact given with a new client; errors name it: "contacts.0.phones.1"."""
    if not isinstance(data, dict):
        raise ValidationError("Нужен объект JSON.", field=f"contacts.{index}",
                              key="object.invalid")
    try:
        return validate_contact(data)
    except ValidationError as exc:
        raise exc.prefixed(f"contacts.{index}") from None


def event_time(value: object, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(f"«{value}» — не дата и время.", field=field,
                              key="datetime.invalid", params={"value": str(value)}) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
