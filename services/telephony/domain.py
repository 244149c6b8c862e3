"""Pure rules of telephony: call input, and how the pieces a PBX sends about one call
(started, answered, ended, recording ready — in any order, any number of times) merge into
one call record."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from services.kit.errors import ValidationError

DIRECTIONS = ("inbound", "outbound", "internal")
OUTCOMES = ("answered", "missed", "busy", "failed")
CALL_FIELDS = ("direction", "our_line", "other_number", "started_at", "answered_at",
               "ended_at", "duration_seconds", "outcome", "recording_ref")
STATUSES = ("new", "live", "finished")
MAX_NUMBER = 50


def parse_time(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValidationError(f"«{value}» — не дата и время (ISO 8601).", field=field,
                                  key="datetime.invalid", params={"value": str(value)}) from None
    if moment.tzinfo is None:
        raise ValidationError("Укажите часовой пояс (например, +03:00).", field=field,
                              key="datetime.zone")
    return moment


def to_e164(number: str | None, region: str = "RU") -> str | None:
    """The number in E.164, or None for an extension or a number that is not valid."""
    if not number:
        return None
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_recording_url(value: Any, allowed_hosts: Sequence[str]) -> str:
    """A recording reported through the API must be an http(s) URL on a host the
    operator allowed (the service downloads it: any other host would let an API user make
    the server fetch arbitrary addresses)."""
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Ссылка на запись должна быть адресом http(s).",
                              field="recording_ref", key="recording.url")
    if parts.hostname.lower() not in {h.lower() for h in allowed_hosts}:
        raise ValidationError(f"Записи с адреса {parts.hostname} не принимаются "
                              "(RECORDING_ALLOWED_HOSTS).",
                              field="recording_ref", key="recording.host",
                              params={"host": parts.hostname})
    return text


def call_from_input(data: Any, allowed_recording_hosts: Sequence[str] = ()) -> dict[str, Any]:
    """Validate a call reported through the API: from, to, direction, start, end."""
    if not isinstance(data, Mapping):
        raise ValidationError("Нужен объект JSON.", field="body", key="object.invalid")
    direction = data.get("direction")
    if direction not in DIRECTIONS:
        raise ValidationError(f"«{direction}» — такого варианта нет.", field="direction",
                              key="choice.invalid",
                              params={"value": str(direction), "options": ", ".join(DIRECTIONS)})
    for name in ("from", "to"):
        value = str(data.get(name) or "").strip()
        if not value:
            raise ValidationError("Обязательное поле.", field=name, key="required")
        if len(value) > MAX_NUMBER:
            raise ValidationError(f"Не больше {MAX_NUMBER} символов.", field=name,
                                  key="text.too_long", params={"max": MAX_NUMBER})
    started = parse_time(data.get("started_at"), "started_at")
    ended = parse_time(data.get("ended_at"), "ended_at")
    if ended < started:
        raise ValidationError("Звонок не может закончиться раньше, чем начался.", field="ended_at",
                              key="call.ended_before_start")
    answered = parse_time(data["answered_at"], "answered_at") if data.get("answered_at") else None
    if answered is not None and not started <= answered <= ended:
        raise ValidationError("Ответ должен быть между началом и концом звонка.",
                              field="answered_at", key="call.answer_outside")
    outcome = data.get("outcome") or ("answered" if answered else "missed")
    if outcome not in OUTCOMES:
        raise ValidationError(f"«{outcome}» — такого варианта нет.", field="outcome",
                              key="choice.invalid",
                              params={"value": str(outcome), "options": ", ".join(OUTCOMES)})
    if (outcome == "answered") != (answered is not None):
        raise ValidationError("Итог «answered» — только у звонка с временем ответа, "
                              "и только у него.",
                              field="outcome", key="call.outcome_answered")
    call_id = str(data.get("call_id") or "").strip()
    if len(call_id) > 200:
        raise ValidationError("Не больше 200 символов.", field="call_id", key="text.too_long",
                              params={"max": 200})
    ours, other = ((data["to"], data["from"]) if direction == "inbound"
                   else (data["from"], data["to"]))
    recording = data.get("recording_ref")
    talk = int((ended - answered).total_seconds()) if answered else 0
    return {"provider": "api",
            "provider_call_id": call_id or f"{ours}-{other}-{started.isoformat()}",
            "direction": direction, "our_line": str(ours).strip(),
            "other_number": str(other).strip(),
            "started_at": started, "answered_at": answered, "ended_at": ended,
            "duration_seconds": talk, "outcome": outcome,
            "recording_ref": (check_recording_url(recording, allowed_recording_hosts)
                              if recording else None)}


# --------------------------------------------------------------------------- merging


@dataclass(frozen=True)
class Piece:
    """What one PBX notice says about a call.  ``final``: the complete record of a finished
    call (it replaces what it knows); otherwise a fragment that only fills gaps."""

    provider: str
    provider_call_id: str
    final: bool
    stage: str  # started | answered | recording | ended
    fields: dict[str, Any] = field(default_factory=dict)


def piece_of(event: Any) -> Piece:
    """A ``CallRecord``/``CallUpdate`` of ``services.telephony.pbx``, or an API call dict."""
    if isinstance(event, Mapping):
        return Piece(str(event["provider"]), str(event["provider_call_id"]), True, "ended",
                     {name: event.get(name) for name in CALL_FIELDS})
    stage = getattr(event, "stage", None)
    if stage is None:  # a CallRecord: the whole finished call
        return Piece(event.provider, event.provider_call_id, True, "ended",
                     {name: getattr(event, name) for name in CALL_FIELDS})
    return Piece(event.provider, event.provider_call_id, stage == "ended", stage,
                 event.changes())


@dataclass(frozen=True)
class Merge:
    values: dict[str, Any]  # columns to write
    status: str             # the call's status afterwards
    started: bool           # the call became known as live: publish call_started
    finished: bool          # the call ended just now: publish call_finished
    recording_changed: bool  # a (new) recording reference: fetch it

    @property
    def changed(self) -> bool:
        return bool(self.values)


def _blank(value: Any) -> bool:
    return value is None or value == ""


def merge(status: str | None, current: Mapping[str, Any], piece: Piece) -> Merge:
    """How ``piece`` changes a call in ``status`` with ``current`` field values.

    * A final record replaces the call's fields — except that it never blanks out what
      we know (a record without a recording keeps the recording a notice gave, a record
      with an empty line number keeps the line).  Repeating it changes nothing.
    * A fragment only fills fields still unknown (so an older event arriving late cannot
      undo a newer one), and never reopens a finished call; a recording notice is the
      exception: it sets the recording whenever it comes.
    """
    status = status or "new"
    values: dict[str, Any] = {}
    if piece.final:
        for name in CALL_FIELDS:
            new = piece.fields.get(name)
            old = current.get(name)
            if name == "recording_ref" and new is None:
                continue
            if _blank(new) and name not in ("answered_at", "outcome") and not _blank(old):
                continue
            if new != old:
                values[name] = new
        new_status = "finished"
    else:
        for name, new in piece.fields.items():
            if name not in CALL_FIELDS or new is None:
                continue
            if name == "recording_ref":
                if new != current.get(name):
                    values[name] = new
            elif status != "finished" and _blank(current.get(name)):
                values[name] = new
        if status == "finished":
            new_status = "finished"
        elif piece.stage in ("started", "answered"):
            new_status = "live"
        else:
            new_status = status
        if (new_status == "live" and _blank(current.get("started_at"))
                and "started_at" not in values and values.get("answered_at") is not None):
            values["started_at"] = values["answered_at"]  # the start notice was lost
    if new_status != status:
        values["status"] = new_status
    if "other_number" in values:
        values["other_e164"] = to_e164(values["other_number"])
    return Merge(values=values, status=new_status,
                 started=status == "new" and new_status == "live",
                 finished=status != "finished" and new_status == "finished",
                 recording_changed=bool(values.get("recording_ref")))


# --------------------------------------------------------------------------- webhooks


def payload_digest(provider: str, event: str, payload: Mapping[str, Any]) -> str:
    """Identity of one webhook delivery: the same payload sent again has the same digest."""
    canonical = json.dumps({"p": provider, "e": event, "d": dict(payload)}, sort_keys=True,
                           ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def clean_form(form: Any, field: str = "form") -> dict[str, str]:
    """A webhook form as ``{str: str}``; anything else is refused naming the field."""
    if not isinstance(form, Mapping):
        raise ValidationError("Ожидаются поля формы.", field=field, key="form.expected")
    cleaned: dict[str, str] = {}
    for key, value in form.items():
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValidationError("Ожидается текст.", field=str(key), key="text.expected")
        cleaned[str(key)] = str(value)
    return cleaned


# --------------------------------------------------------------------------- recordings

_EXTENSIONS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav",
               "audio/vnd.wave": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3",
               "audio/ogg": "ogg", "audio/opus": "opus", "audio/webm": "webm"}
CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg",
                 "opus": "audio/ogg", "webm": "audio/webm"}


def recording_extension(content_type: str | None, ref: str | None) -> str:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in _EXTENSIONS:
        return _EXTENSIONS[kind]
    suffix = (ref or "").rsplit("?", 1)[0].rsplit(".", 1)
    if len(suffix) == 2 and suffix[1].lower() in CONTENT_TYPES:
        return suffix[1].lower()
    return "mp3"


def recording_path(call_id: int, provider: str, started_at: datetime | None,
                   extension: str) -> str:
    """Where a call's recording lives under the recordings volume (relative)."""
    month = started_at.strftime("%Y/%m") if started_at else "undated"
    return f"{provider}/{month}/call-{int(call_id)}.{extension}"
