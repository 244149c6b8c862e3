"""Pure rules of telephony: turning call input into a call record."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import phonenumbers

from services.kit.errors import ValidationError

DIRECTIONS = ("inbound", "outbound", "internal")


def parse_time(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValidationError(f"{field}: '{value}' is not a date-time (ISO 8601)",
                                  field=field) from None
    if moment.tzinfo is None:
        raise ValidationError(f"{field}: give a time zone (e.g. +03:00)", field=field)
    return moment


def to_e164(number: str, region: str = "RU") -> str | None:
    """The number in E.164, or None for an extension or a number that is not valid."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def call_from_input(data: dict[str, Any]) -> dict[str, Any]:
    """Validate a call reported through the API: from, to, direction, start, end."""
    direction = data.get("direction")
    if direction not in DIRECTIONS:
        raise ValidationError(f"direction: must be one of {', '.join(DIRECTIONS)}",
                              field="direction")
    for field in ("from", "to"):
        if not str(data.get(field) or "").strip():
            raise ValidationError(f"{field}: the number is required", field=field)
    started = parse_time(data.get("started_at"), "started_at")
    ended = parse_time(data.get("ended_at"), "ended_at")
    if ended < started:
        raise ValidationError("ended_at: the call cannot end before it started", field="ended_at")
    answered = parse_time(data["answered_at"], "answered_at") if data.get("answered_at") else None
    ours, other = ((data["to"], data["from"]) if direction == "inbound"
                   else (data["from"], data["to"]))
    talk = int((ended - answered).total_seconds()) if answered else 0
    return {"provider": str(data.get("provider") or "api"),
            "provider_call_id": str(data.get("call_id") or f"{ours}-{other}-{started.isoformat()}"),
            "direction": direction, "our_line": str(ours).strip(),
            "other_number": str(other).strip(), "other_e164": to_e164(str(other)),
            "started_at": started, "answered_at": answered, "ended_at": ended,
            "duration_seconds": talk,
            "outcome": "answered" if answered else "missed",
            "recording_ref": data.get("recording_ref")}
