"""The clients entrypoints' small input checks, as pure functions (domain/inputs.py)."""
from __future__ import annotations

import base64
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from services.clients.domain.inputs import (
    check_lang,
    check_version,
    decode_file,
    event_time,
    first_contact,
)
from services.kit.errors import Conflict, ValidationError


def test_a_language_must_be_one_names_are_made_in() -> None:
    assert check_lang("ru") == "ru"
    with pytest.raises(ValidationError) as exc:
        check_lang("xx")
    assert exc.value.details["field"] == "lang"


def test_a_stale_version_is_a_conflict() -> None:
    client = SimpleNamespace(id=5, version=3)
    check_version(client, None)  # type: ignore[arg-type]
    check_version(client, 3)  # type: ignore[arg-type]
    with pytest.raises(Conflict):
        check_version(client, 2)  # type: ignore[arg-type]


def test_a_file_must_be_base64() -> None:
    assert decode_file(base64.b64encode(b"inn;name").decode()) == b"inn;name"
    for bad in (None, "not base64!"):
        with pytest.raises(ValidationError):
            decode_file(bad)


def test_a_contacts_error_names_its_place() -> None:
    with pytest.raises(ValidationError) as exc:
        first_contact(2, "Пётр")
    assert exc.value.details["field"] == "contacts.2"


def test_an_event_time_without_a_zone_is_utc() -> None:
    assert event_time("2026-03-01T10:00:00", "at") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    with pytest.raises(ValidationError):
        event_time("yesterday", "at")
