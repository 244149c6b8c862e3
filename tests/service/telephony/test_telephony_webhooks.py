"""Cloud PBX webhooks (Mango Office, Zadarma) through telephony's RPC, as the gateway
forwards them: signatures checked, refusals logged, repeats and late events harmless."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.kit.errors import Forbidden, ValidationError
from tests.service.telephony.conftest import MANGO_KEY, MANGO_SALT, ZADARMA_SECRET
from tests.support.pbx_standins import make_wav

ENTRY = "MTAwMDY3NjE1OjE0MzQ4NzA0NDMz"


def mango_form(payload: dict[str, Any], salt: str = MANGO_SALT) -> dict[str, str]:
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    sign = hashlib.sha256((MANGO_KEY + raw + salt).encode()).hexdigest()
    return {"vpbx_api_key": MANGO_KEY, "sign": sign, "json": raw}


def mango_leg(seq: int, state: str) -> dict[str, Any]:
    return {"entry_id": ENTRY, "call_id": "leg-1", "timestamp": 1700000000 + seq, "seq": seq,
            "call_state": state, "location": "abonent", "from": {"number": "79161234567"},
            "to": {"extension": "101", "line_number": "74951234567"}}


SUMMARY = {"entry_id": ENTRY, "call_direction": 1, "from": {"number": "79161234567"},
           "to": {"extension": "101"}, "line_number": "74951234567",
           "create_time": 1700000000, "forward_time": 1700000002, "talk_time": 1700000005,
           "end_time": 1700000065, "entry_result": 1, "disconnect_reason": 1110}


def zadarma_signed(form: dict[str, str], *fields: str, secret: str = ZADARMA_SECRET) -> str:
    digest = hmac.new(secret.encode(), "".join(form[f] for f in fields).encode(),
                      hashlib.sha1).hexdigest()
    return base64.b64encode(digest.encode()).decode()


ZD_START = {"event": "NOTIFY_START", "call_start": "2023-11-15 01:13:20",
            "pbx_call_id": "in_3f2a9c1d", "caller_id": "79161234567",
            "called_did": "74951234567"}
ZD_END = {**ZD_START, "event": "NOTIFY_END", "internal": "101", "duration": "65",
          "disposition": "answered", "status_code": "16", "is_recorded": "1",
          "call_id_with_rec": "1700000000.4112"}
ZD_RECORD = {"event": "NOTIFY_RECORD", "pbx_call_id": "in_3f2a9c1d",
             "call_id_with_rec": "1700000000.4112"}
START_FIELDS = ("caller_id", "called_did", "call_start")


def webhook_log(session_of) -> list[tuple[str, str, str]]:
    db = session_of("telephony")
    try:
        return [tuple(r) for r in db.execute(text(
            "SELECT provider, event, outcome FROM webhook_log ORDER BY id")).all()]
    finally:
        db.close()


def test_a_mango_call_arrives_in_pieces_and_its_recording_is_downloaded(
        telephony, directory, pbx_files, spy, rpc, tmp_path: Path):
    directory.add("89161234567", contact_id=7, client_id=3, deal_ids=[11])
    recording = make_wav(seconds=0.3)
    pbx_files.mango["rec-77"] = recording
    events = spy("telephony")
    telephony()
    call = rpc.call
    assert call("telephony", "mango_webhook", "events/call",
                mango_form(mango_leg(1, "Appeared")))["status"] == "accepted"
    started = events.wait_for("call_started")[0]["data"]
    call("telephony", "mango_webhook", "events/call", mango_form(mango_leg(2, "Connected")))
    call("telephony", "mango_webhook", "/events/summary/", mango_form(SUMMARY))
    finished = events.wait_for("call_finished")[0]["data"]
    call("telephony", "mango_webhook", "events/record/added",
         mango_form({"entry_id": ENTRY, "recording_id": "rec-77"}))
    noticed, stored = (e["data"] for e in events.wait_for("call_updated", 2))
    assert noticed["recording_status"] == "pending"

    assert started["id"] == finished["id"] == stored["id"]
    assert (started["direction"], started["our_line"]) == ("inbound", "101")
    assert finished["outcome"] == "answered" and finished["duration_seconds"] == 60
    assert finished["contact_id"] == 7 and finished["deal_ids"] == [11]
    path = rpc.call("telephony", "recording_file", stored["id"])["path"]
    assert (tmp_path / "recordings" / path).read_bytes() == recording
    seen = pbx_files.requests.get(timeout=1)
    assert seen.method == "POST" and b"rec-77" in seen.body


def test_a_mango_webhook_with_a_wrong_sign_is_refused_and_logged(telephony, rpc, session_of):
    telephony()
    with pytest.raises(Forbidden) as refused:
        rpc.call("telephony", "mango_webhook", "events/summary",
                 mango_form(SUMMARY, salt="guessed"), remote_addr="203.0.113.9")
    assert refused.value.details["reason"] == "wrong_sign"
    assert rpc.call("telephony", "list_calls", include_live=True) == []
    assert webhook_log(session_of) == [("mango", "events/summary", "refused")]
    logged = rpc.call("telephony", "list_webhooks", outcome="refused")
    assert logged[0]["remote_addr"] == "203.0.113.9" and "sign" in logged[0]["reason"]


def test_repeated_and_late_mango_events_change_nothing(telephony, directory, spy, rpc):
    events = spy("telephony")
    telephony()
    first = rpc.call("telephony", "mango_webhook", "events/summary", mango_form(SUMMARY))
    again = rpc.call("telephony", "mango_webhook", "events/summary", mango_form(SUMMARY))
    # a leg's "Appeared" arriving after the summary must not reopen the call
    late = rpc.call("telephony", "mango_webhook", "events/call",
                    mango_form(mango_leg(1, "Appeared")))
    marker = dict(SUMMARY, entry_id="other-entry")
    rpc.call("telephony", "mango_webhook", "events/summary", mango_form(marker))
    finished = events.wait_for("call_finished", 2)

    assert first["status"] == "accepted" and again["status"] == "duplicate"
    assert late["status"] in ("accepted", "ignored")
    assert [e["data"]["provider_call_id"] for e in finished] == [ENTRY, "other-entry"]
    assert events.of_type("call_started") == [] and events.of_type("call_updated") == []
    [call] = [c for c in rpc.call("telephony", "list_calls") if c["provider_call_id"] == ENTRY]
    assert call["status"] == "finished" and call["revision"] == 2


def test_a_malformed_signed_mango_webhook_names_the_field(telephony, rpc, session_of):
    telephony()
    with pytest.raises(ValidationError) as invalid:
        rpc.call("telephony", "mango_webhook", "events/summary",
                 mango_form({"entry_id": ENTRY, "call_direction": 7}))
    assert invalid.value.details["field"] == "json.call_direction"
    with pytest.raises(ValidationError) as not_a_form:
        rpc.call("telephony", "mango_webhook", "events/call", ["not", "a", "form"])
    assert not_a_form.value.details["field"] == "form"
    assert webhook_log(session_of) == [("mango", "events/summary", "invalid")]


def test_a_zadarma_call_with_its_recording(telephony, directory, pbx_files, spy, rpc,
                                           tmp_path: Path):
    directory.add("+79161234567", contact_id=5, client_id=2, deal_ids=[8])
    recording = make_wav(seconds=0.2)
    pbx_files.files["/zd/1700000000.4112.mp3"] = recording
    pbx_files.zadarma["1700000000.4112"] = "/zd/1700000000.4112.mp3"
    events = spy("telephony")
    telephony()
    rpc.call("telephony", "zadarma_webhook", ZD_START, zadarma_signed(ZD_START, *START_FIELDS))
    started = events.wait_for("call_started")[0]["data"]
    signature = zadarma_signed(ZD_END, *START_FIELDS)
    assert rpc.call("telephony", "zadarma_webhook", ZD_END, signature)["status"] == "accepted"
    assert rpc.call("telephony", "zadarma_webhook", ZD_END, signature)["status"] == "duplicate"
    rpc.call("telephony", "zadarma_webhook", ZD_RECORD,
             zadarma_signed(ZD_RECORD, "pbx_call_id", "call_id_with_rec"))
    finished = events.wait_for("call_finished")[0]["data"]
    stored = events.wait_for("call_updated")[0]["data"]

    assert started["started_at"] == "2023-11-14T22:13:20+00:00"  # Moscow wall time
    assert finished["our_line"] == "101" and finished["duration_seconds"] == 65
    assert (finished["contact_id"], finished["deal_ids"]) == (5, [8])
    assert len(events.of_type("call_finished")) == 1
    assert stored["recording_status"] == "stored"
    path = rpc.call("telephony", "recording_file", stored["id"])["path"]
    assert path.endswith(".wav")  # named by what arrived, not by the link's suffix
    assert (tmp_path / "recordings" / path).read_bytes() == recording


def test_a_zadarma_webhook_with_a_wrong_signature_is_refused_and_logged(telephony, rpc,
                                                                        session_of):
    telephony()
    tampered = dict(ZD_END, duration="6500")
    with pytest.raises(Forbidden) as refused:
        rpc.call("telephony", "zadarma_webhook", tampered, zadarma_signed(ZD_END, *START_FIELDS,
                                                                          secret="nope"))
    assert refused.value.details["reason"] == "wrong_signature"
    with pytest.raises(Forbidden):
        rpc.call("telephony", "zadarma_webhook", ZD_START, None)
    assert rpc.call("telephony", "list_calls", include_live=True) == []
    assert webhook_log(session_of) == [("zadarma", "NOTIFY_END", "refused"),
                                       ("zadarma", "NOTIFY_START", "refused")]


def test_webhooks_of_an_unconfigured_pbx_are_refused(telephony, rpc):
    telephony(MANGO_API_KEY="", ZADARMA_SECRET="")
    for method, args in (("mango_webhook", ("events/summary", mango_form(SUMMARY))),
                         ("zadarma_webhook", (ZD_START, "x"))):
        with pytest.raises(Forbidden) as refused:
            rpc.call("telephony", method, *args)
        assert refused.value.details["reason"] == "not_configured"
