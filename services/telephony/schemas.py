"""The contract of telephony: the call as RPC results and event payloads carry it."""
from __future__ import annotations

from typing import Any

from services.telephony.models import Call, WebhookLog


def call_dict(call: Call) -> dict[str, Any]:
    """A call as every consumer sees it (``list_calls``, ``call_started``,
    ``call_finished``, ``call_updated``).  ``recording_url`` is the gateway's player
    source, present once the recording is stored."""
    stored = call.recording_status == "stored"
    return {"id": call.id, "provider": call.provider, "provider_call_id": call.provider_call_id,
            "status": call.status, "direction": call.direction, "our_line": call.our_line,
            "other_number": call.other_number, "other_e164": call.other_e164,
            "started_at": call.started_at, "answered_at": call.answered_at,
            "ended_at": call.ended_at, "duration_seconds": call.duration_seconds or 0,
            "outcome": call.outcome, "recording_ref": call.recording_ref,
            "recording_status": call.recording_status,
            "recording_url": f"/calls/{call.id}/recording" if stored else None,
            "contact_id": call.contact_id, "contact_name": call.contact_name,
            "client_id": call.client_id, "deal_ids": list(call.deal_ids or []),
            "revision": call.revision}


def recording_file(call: Call) -> dict[str, Any]:
    return {"call_id": call.id, "status": call.recording_status, "path": call.recording_path,
            "content_type": call.recording_type, "size": call.recording_size,
            "error": call.recording_error}


def webhook_dict(w: WebhookLog) -> dict[str, Any]:
    return {"id": w.id, "provider": w.provider, "event": w.event, "outcome": w.outcome,
            "reason": w.reason, "provider_call_id": w.provider_call_id,
            "remote_addr": w.remote_addr, "received_at": w.received_at}
