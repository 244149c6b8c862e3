"""Zadarma PBX webhooks (NOTIFY_START, NOTIFY_END, NOTIFY_OUT_START, NOTIFY_OUT_END,
NOTIFY_RECORD; NOTIFY_ANSWER and NOTIFY_INTERNAL are verified and mostly ignored).

Zadarma POSTs form fields and puts ``Signature: base64(hex(HMAC-SHA1(secret, s)))`` in a
header — base64 of the *hex digest text*, as PHP's ``hash_hmac`` returns hex by default.
``s`` is a per-event concatenation of form values (``SIGNED_FIELDS``).  When the
notification URL is saved, Zadarma first sends ``GET ?zd_echo=X`` and expects ``X`` back.

``call_start`` is a wall-clock ``YYYY-MM-DD HH:MM:SS`` in the account's time zone, so the
adapter is told that zone.  NOTIFY_END carries no end time: it is sent when the call
ends, so the time we receive it is the end (never earlier than start + talk time).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo

from services.kit import clock
from services.kit.errors import Forbidden, ValidationError
from services.telephony.pbx._parse import integer, required_text, same_secret, text
from services.telephony.pbx.records import (
    CallEvent,
    CallRecord,
    CallUpdate,
    Direction,
    Outcome,
)

NOTIFY_START = "NOTIFY_START"
NOTIFY_INTERNAL = "NOTIFY_INTERNAL"
NOTIFY_ANSWER = "NOTIFY_ANSWER"
NOTIFY_END = "NOTIFY_END"
NOTIFY_OUT_START = "NOTIFY_OUT_START"
NOTIFY_OUT_END = "NOTIFY_OUT_END"
NOTIFY_RECORD = "NOTIFY_RECORD"

# Which form values, concatenated in this order, each event's signature covers.
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    NOTIFY_START: ("caller_id", "called_did", "call_start"),
    NOTIFY_INTERNAL: ("caller_id", "called_did", "call_start"),
    NOTIFY_END: ("caller_id", "called_did", "call_start"),
    NOTIFY_ANSWER: ("caller_id", "destination", "call_start"),
    NOTIFY_OUT_START: ("internal", "destination", "call_start"),
    NOTIFY_OUT_END: ("internal", "destination", "call_start"),
    NOTIFY_RECORD: ("pbx_call_id", "call_id_with_rec"),
}

_DISPOSITIONS: dict[str, Outcome] = {
    "answered": "answered",
    "busy": "busy",
    "cancel": "missed",  # the caller hung up while it rang
    "no answer": "missed",
}  # everything else (failed, no money, unallocated number, line limit, ...) is "failed"


def zadarma_signature(secret: str, signed: str) -> str:
    digest = hmac.new(secret.encode(), signed.encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


def signed_string(form: Mapping[str, str]) -> str:
    event = form.get("event", "")
    names = SIGNED_FIELDS.get(event)
    if names is None:
        raise ValidationError(f"«{event}» — не подписанное событие Zadarma.", field="event",
                              key="zadarma.event", params={"value": str(event)})
    return "".join(form.get(name, "") for name in names)


def zadarma_outcome(disposition: str | None) -> Outcome:
    return _DISPOSITIONS.get((disposition or "").strip().lower(), "failed")


def echo_reply(query: Mapping[str, str]) -> str | None:
    """The body to answer Zadarma's URL check with, or ``None`` if this is not one."""
    return query.get("zd_echo")


# --------------------------------------------------------------------------- parsing


def _call_start(form: Mapping[str, str], zone: tzinfo) -> datetime:
    value = required_text(form, "call_start")
    try:
        local = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ValidationError(f"«{value}» — не время вида ГГГГ-ММ-ДД ЧЧ:ММ:СС.",
                              field="call_start", key="zadarma.call_start",
                              params={"value": str(value)}) from None
    return local.replace(tzinfo=zone)


def parse_start(form: Mapping[str, str], zone: tzinfo = UTC) -> CallUpdate:
    """NOTIFY_START: an incoming call reached the PBX."""
    return CallUpdate(
        provider="zadarma", provider_call_id=required_text(form, "pbx_call_id"),
        stage="started", direction="inbound", our_line=text(form, "called_did"),
        other_number=text(form, "caller_id"), started_at=_call_start(form, zone),
    )


def parse_out_start(form: Mapping[str, str], zone: tzinfo = UTC) -> CallUpdate:
    """NOTIFY_OUT_START: an extension started an outgoing call."""
    return CallUpdate(
        provider="zadarma", provider_call_id=required_text(form, "pbx_call_id"),
        stage="started", direction="outbound", our_line=text(form, "internal"),
        other_number=text(form, "destination"), started_at=_call_start(form, zone),
    )


def parse_answer(form: Mapping[str, str], received_at: datetime) -> CallUpdate:
    """NOTIFY_ANSWER: an extension picked up an incoming call (sent at that moment)."""
    return CallUpdate(
        provider="zadarma", provider_call_id=required_text(form, "pbx_call_id"),
        stage="answered", our_line=text(form, "internal") or text(form, "destination"),
        answered_at=received_at,
    )


def parse_end(form: Mapping[str, str], received_at: datetime, zone: tzinfo = UTC,
              ) -> CallRecord:
    """NOTIFY_END (incoming) and NOTIFY_OUT_END (outgoing): the call is over."""
    if form.get("event") == NOTIFY_OUT_END:
        direction: Direction = "outbound"
        our_line, other = text(form, "internal"), text(form, "destination")
    else:
        direction = "inbound"
        our_line = text(form, "internal") or text(form, "called_did")
        other = text(form, "caller_id")
    outcome = zadarma_outcome(form.get("disposition"))
    started_at = _call_start(form, zone)
    talk = integer(form, "duration") if outcome == "answered" else 0
    ended_at = max(received_at, started_at + timedelta(seconds=talk))
    recorded = form.get("is_recorded") == "1"
    return CallRecord(
        provider="zadarma", provider_call_id=required_text(form, "pbx_call_id"),
        direction=direction, our_line=our_line or "", other_number=other or "",
        started_at=started_at,
        answered_at=ended_at - timedelta(seconds=talk) if outcome == "answered" else None,
        ended_at=ended_at, duration_seconds=max(0, talk), outcome=outcome,
        recording_ref=text(form, "call_id_with_rec") if recorded else None,
    )


def parse_record(form: Mapping[str, str]) -> CallUpdate:
    """NOTIFY_RECORD: the recording can be requested by ``call_id_with_rec``."""
    return CallUpdate(
        provider="zadarma", provider_call_id=required_text(form, "pbx_call_id"),
        stage="recording", recording_ref=required_text(form, "call_id_with_rec"),
    )


# --------------------------------------------------------------------------- webhooks


class ZadarmaWebhooks:
    """Verifies and interprets Zadarma webhooks for one API secret."""

    def __init__(self, secret: str, *, timezone: tzinfo = UTC) -> None:
        if not secret:
            raise ValidationError("Нужен секретный ключ API Zadarma.", field="secret",
                                  key="zadarma.secret")
        self._secret = secret
        self.timezone = timezone  # the zone set in the Zadarma account: call_start is in it

    def echo(self, query: Mapping[str, str]) -> str | None:
        return echo_reply(query)

    def verify(self, form: Mapping[str, str], signature: str | None) -> None:
        if not signature:
            raise Forbidden("Zadarma webhook: Signature header is missing",
                            reason="missing_signature")
        expected = zadarma_signature(self._secret, signed_string(form))
        if not same_secret(signature.strip(), expected):
            raise Forbidden("Zadarma webhook: Signature does not match",
                            reason="wrong_signature")

    def handle(self, form: Mapping[str, str], signature: str | None, *,
               received_at: datetime | None = None) -> CallEvent | None:
        """Interpret one POSTed notification; ``None`` when it changes nothing.

        Events we cannot verify (unknown kinds such as SMS) are ignored unread.
        """
        event = form.get("event", "")
        if event not in SIGNED_FIELDS:
            return None
        self.verify(form, signature)
        now = received_at or clock.now()
        if event == NOTIFY_START:
            return parse_start(form, self.timezone)
        if event == NOTIFY_OUT_START:
            return parse_out_start(form, self.timezone)
        if event == NOTIFY_ANSWER:
            return parse_answer(form, now)
        if event in (NOTIFY_END, NOTIFY_OUT_END):
            return parse_end(form, now, self.timezone)
        if event == NOTIFY_RECORD:
            return parse_record(form)
        return None  # NOTIFY_INTERNAL: an extension is ringing; nothing to record yet
