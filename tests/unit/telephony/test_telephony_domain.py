"""Pure telephony rules: how pieces of a call merge, API input, recording names."""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from services.kit.errors import ValidationError
from services.telephony import domain
from services.telephony.domain import Piece, merge
from services.telephony.pbx.records import CallRecord, CallUpdate
from services.telephony.recordings import FetchFailed, asterisk_url, zadarma_api_authorization

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def record(**change) -> CallRecord:
    values = dict(provider="mango", provider_call_id="e1", direction="inbound",
                  our_line="101", other_number="79161234567", started_at=T0,
                  answered_at=T0 + timedelta(seconds=5), ended_at=T0 + timedelta(seconds=65),
                  duration_seconds=60, outcome="answered", recording_ref=None)
    return CallRecord(**{**values, **change})


def update(stage: str, **fields) -> CallUpdate:
    return CallUpdate(provider="mango", provider_call_id="e1", stage=stage, **fields)


def state_after(*events) -> tuple[str, dict]:
    status, current = "new", {}
    for event in events:
        result = merge(status, current, domain.piece_of(event))
        current = {**current, **result.values}
        status = result.status
    return status, current


def test_a_final_record_finishes_a_new_call_and_repeating_it_changes_nothing():
    first = merge("new", {}, domain.piece_of(record()))
    assert first.finished and not first.started and first.status == "finished"
    assert first.values["other_e164"] == "+79161234567"
    again = merge("finished", {k: first.values.get(k) for k in domain.CALL_FIELDS},
                  domain.piece_of(record()))
    assert not again.changed and not again.finished


def test_a_call_told_in_pieces_starts_once_and_finishes_once():
    started = merge("new", {}, domain.piece_of(update(
        "started", direction="inbound", our_line="74951234567", other_number="79161234567",
        started_at=T0)))
    assert started.started and started.status == "live"
    status, current = state_after(update("started", direction="inbound", started_at=T0,
                                         other_number="79161234567"),
                                  update("answered", answered_at=T0 + timedelta(seconds=5)))
    assert status == "live" and current["answered_at"] == T0 + timedelta(seconds=5)
    done = merge(status, current, domain.piece_of(record()))
    assert done.finished and done.values["our_line"] == "101"


def test_late_pieces_never_reopen_or_rewrite_a_finished_call():
    status, current = state_after(record())
    late = merge(status, current, domain.piece_of(update(
        "answered", answered_at=T0 + timedelta(seconds=50), our_line="999")))
    assert not late.changed and late.status == "finished"


def test_a_recording_notice_sets_the_recording_whenever_it_comes_and_a_record_keeps_it():
    status, current = state_after(record(), update("recording", recording_ref="rec-1"))
    assert current["recording_ref"] == "rec-1"
    corrected = merge(status, current, domain.piece_of(record(outcome="answered")))
    assert "recording_ref" not in corrected.values
    early = merge("new", {}, domain.piece_of(update("recording", recording_ref="rec-2")))
    assert early.status == "new" and early.recording_changed and not early.started


def test_an_answer_heard_before_the_start_still_gives_a_start_time():
    result = merge("new", {}, domain.piece_of(update("answered", answered_at=T0,
                                                     direction="inbound")))
    assert result.started and result.values["started_at"] == T0


def test_a_final_record_with_blank_fields_keeps_what_was_known():
    status, current = state_after(update("started", our_line="74951234567", started_at=T0,
                                         direction="inbound", other_number="79161234567"))
    done = merge(status, current, domain.piece_of(record(our_line="", outcome="missed",
                                                         answered_at=None,
                                                         duration_seconds=0)))
    assert "our_line" not in done.values and done.values["outcome"] == "missed"


def test_api_input_becomes_a_final_piece():
    data = domain.call_from_input({
        "direction": "outbound", "from": "101", "to": "8 916 123-45-67",
        "started_at": "2026-03-02T10:00:00+03:00", "ended_at": "2026-03-02T10:01:00+03:00",
        "answered_at": "2026-03-02T10:00:10+03:00", "call_id": "x-1",
        "recording_ref": "https://pbx.example/r.mp3"}, ["pbx.example"])
    piece = domain.piece_of(data)
    assert isinstance(piece, Piece) and piece.final and piece.provider == "api"
    assert (data["our_line"], data["other_number"], data["duration_seconds"]) == (
        "101", "8 916 123-45-67", 50)


@pytest.mark.parametrize(("change", "field"), [
    ({"from": "1" * 60}, "from"), ({"call_id": "x" * 300}, "call_id"),
    ({"started_at": "2026-03-02T10:00:00"}, "started_at"),
    ({"recording_ref": "https://other.example/r.mp3"}, "recording_ref"),
])
def test_api_input_errors_name_the_field(change, field):
    base = {"direction": "inbound", "from": "+79160000000", "to": "100",
            "started_at": "2026-03-02T10:00:00+00:00", "ended_at": "2026-03-02T10:01:00+00:00"}
    with pytest.raises(ValidationError) as refused:
        domain.call_from_input({**base, **change}, ["pbx.example"])
    assert refused.value.field == field


def test_webhook_payloads_are_identified_by_content():
    one = domain.payload_digest("zadarma", "NOTIFY_END", {"a": "1", "b": "2"})
    assert one == domain.payload_digest("zadarma", "NOTIFY_END", {"b": "2", "a": "1"})
    assert one != domain.payload_digest("zadarma", "NOTIFY_END", {"a": "1", "b": "3"})
    assert domain.clean_form({"a": ["x", "y"], "n": 5}) == {"a": "x", "n": "5"}
    with pytest.raises(ValidationError) as refused:
        domain.clean_form({"a": {"nested": 1}})
    assert refused.value.field == "a"


def test_recordings_are_named_by_call_and_kind():
    assert domain.recording_extension("audio/mpeg", "x.wav") == "mp3"
    assert domain.recording_extension("application/octet-stream", "/a/b.WAV") == "wav"
    assert domain.recording_extension(None, "id-without-suffix") == "mp3"
    assert domain.recording_path(41, "asterisk", T0, "wav") == "asterisk/2026/03/call-41.wav"
    assert domain.recording_path(7, "api", None, "mp3") == "api/undated/call-7.mp3"


def test_asterisk_recording_paths_map_below_the_published_monitor_directory():
    assert asterisk_url("http://pbx/rec/", "/var/spool/asterisk/monitor",
                        "/var/spool/asterisk/monitor/2023/11/in 1.wav") == (
        "http://pbx/rec/2023/11/in%201.wav")
    assert asterisk_url("http://pbx/rec", "/srv", "/elsewhere/x.wav") == "http://pbx/rec/x.wav"
    with pytest.raises(FetchFailed):
        asterisk_url("http://pbx/rec", "/srv", "/srv/../etc/passwd")


def test_zadarma_api_signature_follows_their_formula():
    params = {"call_id": "1700000000.4112"}
    query = "call_id=1700000000.4112"
    signed = "/v1/pbx/record/request/" + query + hashlib.md5(query.encode()).hexdigest()
    digest = hmac.new(b"secret", signed.encode(), hashlib.sha1).hexdigest()
    assert zadarma_api_authorization("key", "secret", "/v1/pbx/record/request/", params) == (
        "key:" + base64.b64encode(digest.encode()).decode())
