"""Calls from Asterisk's AMI: a real TCP session to the stand-in replaying recorded event
sequences, into call records matched to contacts, with the recording downloaded."""
from __future__ import annotations

import queue
from pathlib import Path

from sqlalchemy import text

from tests.support.pbx_standins import AmiStandIn, fixture_frames, make_wav

RECORDING = ("/monitor/2023/11/14/"
             "in-74951234567-79161234567-20231114-221320-1700000000.41.wav")


def ami_config(ami: AmiStandIn) -> dict:
    return {"AMI_HOST": ami.host, "AMI_PORT": ami.port, "AMI_USERNAME": "crm",
            "AMI_SECRET": "s3cret"}


def test_an_inbound_answered_call_is_matched_published_and_its_recording_stored(
        telephony, directory, pbx_files, spy, tmp_path: Path, rpc):
    directory.add("+7 916 123-45-67", contact_id=7, client_id=3, deal_ids=[11, 12])
    wav = make_wav(seconds=0.5)
    pbx_files.files[RECORDING] = wav
    events = spy("telephony")
    with AmiStandIn() as ami:
        ami.queue_session(fixture_frames("inbound_answered_recorded"))
        telephony(**ami_config(ami))
        started = events.wait_for("call_started")[0]["data"]
        finished = events.wait_for("call_finished")[0]["data"]
        stored = events.wait_for("call_updated")[0]["data"]

    assert started["status"] == "live" and started["direction"] == "inbound"
    assert started["other_e164"] == "+79161234567" and started["contact_id"] == 7
    assert finished["id"] == started["id"]
    assert finished["provider"] == "asterisk" and finished["provider_call_id"] == "1700000000.41"
    assert finished["our_line"] == "101" and finished["other_number"] == "79161234567"
    assert finished["outcome"] == "answered" and finished["duration_seconds"] == 65
    assert finished["started_at"].startswith("2023-11-14T22:13:20")
    assert (finished["contact_id"], finished["client_id"], finished["deal_ids"]) == (7, 3, [11, 12])
    assert finished["recording_ref"].endswith("1700000000.41.wav")
    assert stored["recording_status"] == "stored"
    assert stored["recording_url"] == f"/calls/{finished['id']}/recording"
    assert stored["revision"] > finished["revision"]
    where = rpc.call("telephony", "recording_file", finished["id"])
    assert where["content_type"] == "audio/wav" and where["size"] == len(wav)
    assert (tmp_path / "recordings" / where["path"]).read_bytes() == wav
    assert rpc.call("telephony", "list_calls", deal_id=12)[0]["id"] == finished["id"]


def test_outbound_answered_and_inbound_missed_calls_in_one_session(telephony, directory, spy,
                                                                   rpc):
    directory.add("+7 903 777-88-99", contact_id=9, client_id=4, deal_ids=[21])
    events = spy("telephony", "call_finished")
    with AmiStandIn() as ami:
        ami.queue_session(fixture_frames("outbound_answered") + fixture_frames("inbound_missed"))
        telephony(**ami_config(ami))
        outbound, missed = (e["data"] for e in events.wait_for("call_finished", 2))

    assert (outbound["direction"], outbound["outcome"]) == ("outbound", "answered")
    assert outbound["our_line"] == "102" and outbound["other_e164"] == "+74951112233"
    assert outbound["duration_seconds"] == 90 and outbound["contact_id"] is None
    assert (missed["direction"], missed["outcome"]) == ("inbound", "missed")
    assert missed["duration_seconds"] == 0 and missed["answered_at"] is None
    assert (missed["contact_id"], missed["deal_ids"]) == (9, [21])
    assert {c["id"] for c in rpc.call("telephony", "list_calls", unknown=True)} == {outbound["id"]}


def test_a_call_spanning_a_dropped_connection_completes_once(telephony, directory, spy):
    frames = fixture_frames("inbound_missed")
    events = spy("telephony")
    with AmiStandIn() as ami:
        ami.queue_session(frames[:6], drop_after=6)  # the link breaks mid-call
        ami.queue_session(frames[6:])
        telephony(**ami_config(ami))
        finished = events.wait_for("call_finished")[0]["data"]
        assert [ami.logins.get(timeout=5).accepted for _ in range(2)] == [True, True]
    assert finished["outcome"] == "missed" and finished["provider_call_id"] == "1700000200.60"
    assert len(events.of_type("call_started")) == 1 and len(events.of_type("call_finished")) == 1


def test_one_replica_holds_the_ami_session_and_another_takes_over_when_it_dies(
        telephony, directory, spy, session_of, start_service):
    events = spy("telephony", "call_finished")
    with AmiStandIn() as ami:
        ami.queue_session(fixture_frames("outbound_busy"))
        ami.queue_session(fixture_frames("inbound_missed"))
        first = telephony(**ami_config(ami))
        second = telephony(with_directory=False, **ami_config(ami))
        assert ami.logins.get(timeout=5).accepted
        assert events.wait_for("call_finished")[0]["data"]["outcome"] == "busy"
        db = session_of("telephony")
        # this test's database only: other tests' replicas hold their own leases
        holders = db.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = "
            "current_database())")).scalar()
        assert holders == 1
        assert ami.logins.empty()  # the second replica waits for the lease

        owner, spare = (first, second) if _holds_session(first) else (second, first)
        owner.kill()
        assert ami.logins.get(timeout=5).accepted  # the spare took over
        assert events.wait_for("call_finished", 2)[1]["data"]["outcome"] == "missed"
        assert _holds_session(spare)
        db.close()
    try:
        ami.logins.get_nowait()
        raise AssertionError("a third AMI login")
    except queue.Empty:
        pass


def _holds_session(container) -> bool:
    stream = next(e for e in container.entrypoints if type(e).__name__ == "AmiStream")
    return stream.client is not None


def test_a_refused_login_is_retried_and_nothing_is_recorded(telephony, directory, rpc):
    with AmiStandIn() as ami:
        telephony(**{**ami_config(ami), "AMI_SECRET": "wrong"})
        attempts = [ami.logins.get(timeout=5) for _ in range(2)]
    assert [a.accepted for a in attempts] == [False, False]
    assert rpc.call("telephony", "list_calls", include_live=True) == []


def test_intake_survives_a_broken_recording_server(telephony, directory, pbx_files, spy, rpc):
    pbx_files.fail_next(1, 503)
    pbx_files.files[RECORDING] = make_wav()
    events = spy("telephony", "call_updated")
    with AmiStandIn() as ami:
        ami.queue_session(fixture_frames("inbound_answered_recorded"))
        telephony(**ami_config(ami))
        stored = events.wait_for("call_updated")[0]["data"]
    assert stored["recording_status"] == "stored"
    where = rpc.call("telephony", "recording_file", stored["id"])
    assert where["error"] is None and where["size"] == len(pbx_files.files[RECORDING])
