"""Calls reported through the API, matching that waits for a service that is down,
re-attribution (T4), and recordings that fail and are retried."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.kit.errors import Conflict, NotFound, ValidationError
from tests.service.telephony.conftest import FakeClients, FakeDeals
from tests.support.pbx_standins import make_wav

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def api_call(number: str, call_id: str, answered: bool = True, **extra) -> dict:
    return {"direction": "inbound", "from": number, "to": "+74951234500",
            "started_at": START.isoformat(),
            "answered_at": (START + timedelta(seconds=4)).isoformat() if answered else None,
            "ended_at": (START + timedelta(seconds=64)).isoformat(), "call_id": call_id,
            **extra}


def test_a_reported_call_is_matched_listed_and_published_once(telephony, directory, spy, rpc):
    directory.add("+7 916 555-12-34", contact_id=4, client_id=2, deal_ids=[30, 31])
    events = spy("telephony", "call_finished")
    telephony()
    call = rpc.call("telephony", "record_call", api_call("8 (916) 555-12-34", "c-1"))
    again = rpc.call("telephony", "record_call", api_call("8 (916) 555-12-34", "c-1"))
    rpc.call("telephony", "record_call", api_call("+7 999 000-00-00", "marker", answered=False))
    published = events.wait_for("call_finished", 2)

    assert again == call and call["duration_seconds"] == 60
    assert (call["contact_id"], call["client_id"], call["deal_ids"]) == (4, 2, [30, 31])
    assert [e["data"]["provider_call_id"] for e in published] == ["c-1", "marker"]
    assert [c["id"] for c in rpc.call("telephony", "list_calls", deal_id=31)] == [call["id"]]
    assert [c["id"] for c in rpc.call("telephony", "list_calls", client_id=2)] == [call["id"]]
    assert rpc.call("telephony", "list_calls", contact_id=4)[0]["outcome"] == "answered"


BAD_INPUT = [
    ({"direction": "sideways"}, "direction"),
    ({"from": ""}, "from"),
    ({"started_at": "yesterday"}, "started_at"),
    ({"ended_at": "2026-03-02T09:00:00+00:00"}, "ended_at"),
    ({"answered_at": "2026-03-02T12:00:00+00:00"}, "answered_at"),
    ({"outcome": "answered", "answered_at": None}, "outcome"),
    ({"recording_ref": "http://evil.example/x.wav"}, "recording_ref"),
    ({"recording_ref": "file:///etc/passwd"}, "recording_ref"),
]


def test_bad_call_input_is_refused_naming_the_field(telephony, rpc):
    telephony(with_directory=False)
    for change, field in BAD_INPUT:
        with pytest.raises(ValidationError) as refused:
            rpc.call("telephony", "record_call", {**api_call("+79160000000", "x"), **change})
        assert refused.value.details["field"] == field, change
    with pytest.raises(ValidationError) as refused:
        rpc.call("telephony", "record_call", "not an object")
    assert refused.value.details["field"] == "body"
    assert rpc.call("telephony", "list_calls") == []


def test_a_call_is_matched_later_when_clients_was_down(telephony, start_service, directory,
                                                       spy, rpc):
    directory.add("+79160001122", contact_id=8, client_id=6, deal_ids=[40])
    events = spy("telephony", "call_finished")
    telephony(with_directory=False)
    call = rpc.call("telephony", "record_call", api_call("+79160001122", "while-down"))
    assert call["contact_id"] is None and events.of_type("call_finished") == []

    start_service(FakeClients)
    start_service(FakeDeals)
    finished = events.wait_for("call_finished")[0]["data"]
    assert (finished["id"], finished["contact_id"], finished["deal_ids"]) == (call["id"], 8, [40])


def test_an_unknown_callers_calls_are_attached_to_the_client_made_from_one(
        telephony, directory, spy, rpc):
    events = spy("telephony")
    telephony()
    first = rpc.call("telephony", "record_call", api_call("+79035550001", "u-1"))
    second = rpc.call("telephony", "record_call", api_call("8 903 555-00-01", "u-2",
                                                           answered=False))
    other = rpc.call("telephony", "record_call", api_call("+79035550002", "u-3"))
    events.wait_for("call_finished", 3)
    assert {c["id"] for c in rpc.call("telephony", "list_calls", unknown=True)} == {
        first["id"], second["id"], other["id"]}

    attached = rpc.call("telephony", "attach_call", first["id"], 70, 60, [80],
                        contact_name="Новый клиент")
    updates = events.wait_for("call_updated", 2)

    assert (attached["contact_id"], attached["client_id"], attached["deal_ids"]) == (70, 60, [80])
    assert {u["data"]["id"] for u in updates} == {first["id"], second["id"]}
    assert [c["id"] for c in rpc.call("telephony", "list_calls", unknown=True)] == [other["id"]]
    assert {c["id"] for c in rpc.call("telephony", "list_calls", deal_id=80)} == {
        first["id"], second["id"]}


def test_attach_call_refuses_bad_ids(telephony, rpc):
    telephony(with_directory=False)
    with pytest.raises(ValidationError) as bad:
        rpc.call("telephony", "attach_call", 1, "seven", 2)
    assert bad.value.details["field"] == "contact_id"
    with pytest.raises(ValidationError) as bad:
        rpc.call("telephony", "attach_call", 1, 7, 2, ["x"])
    assert bad.value.details["field"] == "deal_ids"
    with pytest.raises(NotFound):
        rpc.call("telephony", "attach_call", 999, 7, 2)


def test_a_failing_recording_is_retried_then_marked_failed_and_can_be_asked_again(
        telephony, directory, pbx_files, spy, rpc):
    events = spy("telephony", "call_updated")
    telephony()
    url = pbx_files.url("/api-rec/a.wav")
    pbx_files.fail_next(2, 502)
    retried = rpc.call("telephony", "record_call", api_call("+79160000001", "r-1",
                                                            recording_ref=url))
    pbx_files.files["/api-rec/a.wav"] = make_wav()
    stored = events.wait_for("call_updated")[0]["data"]
    assert (stored["id"], stored["recording_status"]) == (retried["id"], "stored")
    assert rpc.call("telephony", "recording_file", retried["id"])["size"] == len(
        pbx_files.files["/api-rec/a.wav"])

    missing = rpc.call("telephony", "record_call", api_call(
        "+79160000002", "r-2", recording_ref=pbx_files.url("/api-rec/never.wav")))
    failed = events.wait_for("call_updated", 2)[1]["data"]
    assert (failed["id"], failed["recording_status"]) == (missing["id"], "failed")
    assert "HTTP 404" in rpc.call("telephony", "recording_file", missing["id"])["error"]

    pbx_files.files["/api-rec/never.wav"] = make_wav()
    assert rpc.call("telephony", "retry_recording", missing["id"])["recording_status"] == "pending"
    assert events.wait_for("call_updated", 3)[2]["data"]["recording_status"] == "stored"
    with pytest.raises(Conflict):
        rpc.call("telephony", "retry_recording", rpc.call(
            "telephony", "record_call", api_call("+79160000003", "r-3"))["id"])
