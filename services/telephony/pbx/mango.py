"""Mango Office VPBX realtime webhooks (API Realtime).

Mango POSTs form fields ``vpbx_api_key``, ``sign`` and ``json`` to
``<our url>/events/call``, ``/events/summary``, ``/events/record/added`` (and others we
ignore).  ``sign = sha256(vpbx_api_key + json + vpbx_api_salt)`` in hex, computed over the
``json`` string exactly as sent — so it is checked before the JSON is parsed.

One call is one ``entry_id`` (the call context); every leg inside it (IVR, queue, each
employee rung) has its own ``call_id`` and its own ``seq`` counter.  Events can arrive out
of order, so a leg's event with a ``seq`` not above the last one seen is dropped, and
after the ``summary`` (the final word on the call) late leg events are dropped too.

Timestamps are Unix epoch seconds (Mango's documentation labels them "UTC+3", which only
describes how its UI shows them; an epoch value has no zone).
"""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from services.kit.errors import Forbidden, ValidationError
from services.telephony.pbx._parse import (
    integer,
    required_text,
    same_secret,
    section,
    text,
)
from services.telephony.pbx.records import (
    CallEvent,
    CallRecord,
    CallUpdate,
    Direction,
    Outcome,
    utc_from_timestamp,
)

EVENT_CALL = "events/call"
EVENT_SUMMARY = "events/summary"
EVENT_RECORD_ADDED = "events/record/added"

# disconnect_reason codes (Mango "коды ответов"): 1121 busy, 1122 rejected by the callee,
# 1123 "do not disturb" — the callee was there but would not talk.
DEFAULT_BUSY_REASONS: frozenset[int] = frozenset({1121, 1122, 1123})
# 113x number restricted/unavailable/not served/nonexistent, 1140 region barred,
# 115x caller barred; 2xxx billing, 3xxx bad number, 4xxx unreachable, 5xxx technical.
_FAILED_REASONS: frozenset[int] = frozenset({1130, 1131, 1132, 1133, 1134, 1140, 1150,
                                             1151, 1152})

_DIRECTIONS: dict[int, Direction] = {0: "internal", 1: "inbound", 2: "outbound"}


def mango_sign(api_key: str, json_text: str, api_salt: str) -> str:
    """Mango's request signature: hex sha256 of key + raw json + salt."""
    return hashlib.sha256(f"{api_key}{json_text}{api_salt}".encode()).hexdigest()


def mango_outcome(entry_result: int, disconnect_reason: int,
                  busy_reasons: frozenset[int] = DEFAULT_BUSY_REASONS) -> Outcome:
    if entry_result == 1:
        return "answered"
    if disconnect_reason in busy_reasons:
        return "busy"
    if disconnect_reason in _FAILED_REASONS or disconnect_reason >= 2000:
        return "failed"
    return "missed"  # 11xx: the caller gave up, nobody answered in time, queue timeout


def _epoch(value: int) -> datetime | None:
    return utc_from_timestamp(value) if value > 0 else None  # Mango sends 0 for "never"


def _ext(party: Mapping[str, Any]) -> str | None:
    return text(party, "extension")


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class MangoCallEvent:
    """One ``events/call`` notification, reduced to what a call record needs."""

    entry_id: str
    call_id: str
    seq: int
    state: str  # Appeared | Connected | OnHold | Disconnected
    at: datetime
    location: str | None
    direction: Direction
    our_line: str | None
    other_number: str | None


def parse_call_event(data: Mapping[str, Any]) -> MangoCallEvent:
    caller, callee = section(data, "from"), section(data, "to")
    direction, our_line, other = _leg_parties(caller, callee)
    stamp = _epoch(integer(data, "timestamp", "json."))
    if stamp is None:
        raise ValidationError("Обязательное поле.", field="json.timestamp", key="required")
    if data.get("seq") is None:  # without it, ordering (the point of seq) is impossible
        raise ValidationError("Обязательное поле.", field="json.seq", key="required")
    return MangoCallEvent(
        entry_id=required_text(data, "entry_id", "json."),
        call_id=required_text(data, "call_id", "json."),
        seq=integer(data, "seq", "json."),
        state=required_text(data, "call_state", "json."),
        at=stamp,
        location=text(data, "location"),
        direction=direction, our_line=our_line, other_number=other,
    )


def _leg_parties(caller: Mapping[str, Any], callee: Mapping[str, Any],
                 ) -> tuple[Direction, str | None, str | None]:
    """Direction and (our line, other number) of one leg, judged by who is an employee."""
    caller_ext, callee_ext = _ext(caller), _ext(callee)
    if caller_ext and callee_ext:
        return "internal", caller_ext, callee_ext
    if caller_ext:
        return "outbound", caller_ext, text(callee, "number")
    our_line = callee_ext or text(callee, "line_number") or text(callee, "number")
    return "inbound", our_line, text(caller, "number")


def parse_summary(data: Mapping[str, Any],
                  busy_reasons: frozenset[int] = DEFAULT_BUSY_REASONS) -> CallRecord:
    """``events/summary``: the final state of the whole call (``entry_id``)."""
    entry_id = required_text(data, "entry_id", "json.")
    direction = _DIRECTIONS.get(integer(data, "call_direction", "json.", default=-1))
    if direction is None:
        raise ValidationError("Направление звонка — 0, 1 или 2.", field="json.call_direction",
                              key="choice.invalid",
                              params={"value": str(data.get("call_direction")),
                                      "options": "0, 1, 2"})
    started_at = _epoch(integer(data, "create_time", "json."))
    ended_at = _epoch(integer(data, "end_time", "json.")) or started_at
    if started_at is None or ended_at is None:
        raise ValidationError("Обязательное поле.", field="json.create_time", key="required")
    outcome = mango_outcome(integer(data, "entry_result", "json."),
                            integer(data, "disconnect_reason", "json."), busy_reasons)
    answered_at = _summary_answer_time(data, outcome, started_at)
    our_line, other = _summary_parties(data, direction)
    talk = (ended_at - answered_at).total_seconds() if answered_at else 0
    return CallRecord(
        provider="mango", provider_call_id=entry_id, direction=direction,
        our_line=our_line, other_number=other, started_at=started_at,
        answered_at=answered_at, ended_at=max(ended_at, started_at),
        duration_seconds=max(0, round(talk)), outcome=outcome, recording_ref=None,
    )


def _summary_answer_time(data: Mapping[str, Any], outcome: Outcome,
                         started_at: datetime) -> datetime | None:
    if outcome != "answered":
        return None
    # talk_time is 0 only if Mango lost it; forward/create time is the next best guess.
    return (_epoch(integer(data, "talk_time", "json."))
            or _epoch(integer(data, "forward_time", "json.")) or started_at)


def _summary_parties(data: Mapping[str, Any], direction: Direction) -> tuple[str, str]:
    caller, callee = section(data, "from"), section(data, "to")
    line = text(data, "line_number")
    if direction == "inbound":
        ours = _ext(callee) or line or text(callee, "number")
        other = text(caller, "number")
    elif direction == "outbound":
        ours = _ext(caller) or line or text(caller, "number")
        other = text(callee, "number")
    else:
        ours = _ext(caller) or text(caller, "number")
        other = _ext(callee) or text(callee, "number")
    return ours or "", other or ""


def parse_record_added(data: Mapping[str, Any]) -> CallUpdate:
    """``events/record/added``: the recording is in Mango's cloud and can be downloaded."""
    return CallUpdate(
        provider="mango", provider_call_id=required_text(data, "entry_id", "json."),
        stage="recording", recording_ref=required_text(data, "recording_id", "json."),
    )


# --------------------------------------------------------------------------- ordering


class _Lru:
    """Bounded memory of recent keys, so a long-running service does not grow forever."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: OrderedDict[Hashable, int] = OrderedDict()

    def get(self, key: Hashable) -> int | None:
        return self._items.get(key)

    def put(self, key: Hashable, value: int) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)


class MangoCallTracker:
    """Decides which ``events/call`` notifications still say something new.

    Per leg only a higher ``seq`` passes; per call only the first ``Appeared`` becomes a
    "started" update and the first ``Connected`` an "answered" one; nothing passes after
    the summary.  In-memory: with several service instances the consumer's upsert should
    also refuse to move a finished call back (it has the summary's record by then).
    """

    def __init__(self, limit: int = 20_000) -> None:
        self._seqs = _Lru(limit)
        self._stages = _Lru(limit)  # entry_id -> bit set of stages already emitted

    _STARTED, _ANSWERED, _FINISHED = 1, 2, 4

    def on_call(self, event: MangoCallEvent) -> CallUpdate | None:
        last = self._seqs.get((event.entry_id, event.call_id))
        if last is not None and event.seq <= last:
            return None  # an older state of this leg arrived late
        self._seqs.put((event.entry_id, event.call_id), event.seq)
        if event.state == "Appeared":
            return self._once(event, self._STARTED, "started")
        if event.state == "Connected":
            return self._once(event, self._ANSWERED, "answered")
        return None  # OnHold/Disconnected of one leg do not end the call; summary does

    def on_summary(self, entry_id: str) -> None:
        self._stages.put(entry_id, (self._stages.get(entry_id) or 0) | self._FINISHED)

    def _once(self, event: MangoCallEvent, bit: int,
              stage: Literal["started", "answered"]) -> CallUpdate | None:
        done = self._stages.get(event.entry_id) or 0
        if done & (bit | self._FINISHED):
            return None
        self._stages.put(event.entry_id, done | bit)
        return CallUpdate(
            provider="mango", provider_call_id=event.entry_id,
            stage=stage,
            direction=event.direction, our_line=event.our_line,
            other_number=event.other_number,
            started_at=event.at if stage == "started" else None,
            answered_at=event.at if stage == "answered" else None,
        )


# --------------------------------------------------------------------------- webhooks


class MangoWebhooks:
    """Verifies and interprets Mango webhooks for one VPBX (api key + salt)."""

    def __init__(self, api_key: str, api_salt: str, *,
                 busy_reasons: frozenset[int] = DEFAULT_BUSY_REASONS,
                 tracker: MangoCallTracker | None = None) -> None:
        if not api_key or not api_salt:
            raise ValidationError("Нужны ключ и соль API Mango.", field="api_key",
                                  key="mango.keys")
        self._api_key, self._api_salt = api_key, api_salt
        self._busy_reasons = busy_reasons
        self.tracker = tracker or MangoCallTracker()

    def verify(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Check key and signature over the raw ``json`` field, then parse it."""
        key, sign, raw = form.get("vpbx_api_key"), form.get("sign"), form.get("json")
        if not key:
            raise Forbidden("Mango webhook: vpbx_api_key is missing", reason="missing_key")
        if not same_secret(key, self._api_key):
            raise Forbidden("Mango webhook: unknown vpbx_api_key", reason="wrong_key")
        if raw is None:
            raise ValidationError("Обязательное поле.", field="json", key="required")
        if not sign:
            raise Forbidden("Mango webhook: sign is missing", reason="missing_sign")
        expected = mango_sign(self._api_key, raw, self._api_salt)
        if not same_secret(sign.strip().lower(), expected):
            raise Forbidden("Mango webhook: sign does not match", reason="wrong_sign")
        return _load_json(raw)

    def handle(self, event: str, form: Mapping[str, str]) -> CallEvent | None:
        """Interpret one webhook; ``event`` is the URL tail, e.g. ``events/summary``.

        Returns ``None`` for events that change nothing (stale, duplicate, or a kind we
        do not use such as ``events/dtmf``) — answer those 200 all the same.
        """
        data = self.verify(form)
        name = event.strip().strip("/")
        if name == EVENT_CALL:
            return self.tracker.on_call(parse_call_event(data))
        if name == EVENT_SUMMARY:
            record = parse_summary(data, self._busy_reasons)
            self.tracker.on_summary(record.provider_call_id)
            return record
        if name == EVENT_RECORD_ADDED:
            return parse_record_added(data)
        return None


def _load_json(raw: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValidationError("Это не JSON.", field="json", key="body.invalid") from None
    if not isinstance(data, dict):
        raise ValidationError("Нужен объект JSON.", field="json", key="object.invalid")
    return data
