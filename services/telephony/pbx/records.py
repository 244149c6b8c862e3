"""The one shape every PBX adapter produces.

A PBX tells us about a call in pieces (it started, someone answered, it ended, the recording
is ready) and sometimes out of order.  ``CallRecord`` is the complete picture of a finished
call; ``CallUpdate`` is one piece of it.  The consumer upserts both by
``(provider, provider_call_id)``: a record replaces the row's call fields, an update only
sets the fields it carries (``CallUpdate.changes``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Literal

from services.kit.errors import ValidationError

Provider = Literal["asterisk", "mango", "zadarma"]
Direction = Literal["inbound", "outbound", "internal"]
Outcome = Literal["answered", "missed", "busy", "failed"]
Stage = Literal["started", "answered", "ended", "recording"]

PROVIDERS: frozenset[str] = frozenset({"asterisk", "mango", "zadarma"})
DIRECTIONS: frozenset[str] = frozenset({"inbound", "outbound", "internal"})
OUTCOMES: frozenset[str] = frozenset({"answered", "missed", "busy", "failed"})
STAGES: frozenset[str] = frozenset({"started", "answered", "ended", "recording"})

_KEY_FIELDS = ("provider", "provider_call_id", "stage")


def utc(value: datetime, field: str) -> datetime:
    """Return ``value`` in UTC; a naive datetime is refused because its zone is a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError("Нужно время с часовым поясом.", field=field, key="datetime.zone")
    return value.astimezone(UTC)


def utc_from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _check_choice(value: str | None, allowed: frozenset[str], field: str) -> None:
    if value is not None and value not in allowed:
        raise ValidationError(f"«{value}» — такого варианта нет.", field=field,
                              key="choice.invalid",
                              params={"value": str(value), "options": ", ".join(sorted(allowed))})


def _check_identity(provider: str, provider_call_id: str) -> None:
    _check_choice(provider, PROVIDERS, "provider")
    if not provider_call_id:
        raise ValidationError("Обязательное поле.", field="provider_call_id", key="required")


def _check_duration(value: int | None) -> None:
    if value is not None and value < 0:
        raise ValidationError("Длительность не может быть отрицательной.",
                              field="duration_seconds", key="number.min", params={"min": 0})


def _check_call(record: CallRecord | CallUpdate) -> None:
    """What a whole record and an update both promise: a known provider and call id, known
    direction and outcome, no negative duration, and every moment in UTC."""
    _check_identity(record.provider, record.provider_call_id)
    _check_choice(record.direction, DIRECTIONS, "direction")
    _check_choice(record.outcome, OUTCOMES, "outcome")
    _check_duration(record.duration_seconds)
    # frozen dataclasses: normalise through object.__setattr__ so every record is UTC
    for name in ("started_at", "answered_at", "ended_at"):
        value = getattr(record, name)
        if value is not None:
            object.__setattr__(record, name, utc(value, name))


@dataclass(frozen=True)
class CallRecord:
    """A finished call, as complete as the PBX could tell it."""

    provider: Provider
    provider_call_id: str
    direction: Direction
    our_line: str          # our number (DID) or the extension that took / made the call
    other_number: str      # raw, as the PBX gave it; E.164 normalisation happens downstream
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    duration_seconds: int  # talk time, 0 when nobody answered
    outcome: Outcome
    recording_ref: str | None = None  # file name / id / URL to fetch from the PBX

    def __post_init__(self) -> None:
        _check_call(self)

    def to_update(self) -> CallUpdate:
        """The record as an update that carries every field (stage ``ended``)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return CallUpdate(stage="ended", **values)


@dataclass(frozen=True)
class CallUpdate:
    """Part of a call's story; ``None`` means "this event did not say", never "clear it"."""

    provider: Provider
    provider_call_id: str
    stage: Stage
    direction: Direction | None = None
    our_line: str | None = None
    other_number: str | None = None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: int | None = None
    outcome: Outcome | None = None
    recording_ref: str | None = None

    def __post_init__(self) -> None:
        _check_choice(self.stage, STAGES, "stage")
        _check_call(self)

    def changes(self) -> dict[str, Any]:
        """The call fields this update sets (what an upsert should write)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in _KEY_FIELDS and getattr(self, f.name) is not None
        }


CallEvent = CallRecord | CallUpdate
