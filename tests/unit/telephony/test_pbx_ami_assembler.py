from datetime import UTC, datetime, timedelta

import pytest

from services.telephony.pbx.ami import (
    AmiFrameParser,
    CallAssembler,
    LineRules,
    channel_peer,
)
from services.telephony.pbx.records import CallRecord, CallUpdate
from tests.support.pbx_standins import BANNER, fixture_frames, fixture_messages, wire


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _run(name: str) -> tuple[list[CallUpdate], list[CallRecord]]:
    out = CallAssembler().feed_all(fixture_messages(name))
    return ([i for i in out if isinstance(i, CallUpdate)],
            [i for i in out if isinstance(i, CallRecord)])


def test_inbound_answered_call_with_recording() -> None:
    started, records = _run("inbound_answered_recorded")
    assert started == [CallUpdate(
        provider="asterisk", provider_call_id="1700000000.41", stage="started",
        direction="inbound", our_line="74951234567", other_number="79161234567",
        started_at=_at(1700000000.102311))]
    assert records == [CallRecord(
        provider="asterisk", provider_call_id="1700000000.41", direction="inbound",
        our_line="101", other_number="79161234567", started_at=_at(1700000000.102311),
        answered_at=_at(1700000006.812311), ended_at=_at(1700000071.402311),
        duration_seconds=65, outcome="answered",
        recording_ref="/var/spool/asterisk/monitor/2023/11/14/"
                      "in-74951234567-79161234567-20231114-221320-1700000000.41.wav")]


def test_outbound_answered_call() -> None:
    started, records = _run("outbound_answered")
    assert [(u.direction, u.our_line, u.other_number) for u in started] == [
        ("outbound", "102", "84951112233")]
    (record,) = records
    assert (record.direction, record.our_line, record.other_number) == (
        "outbound", "102", "84951112233")
    assert record.outcome == "answered"
    assert record.answered_at == _at(1700000112.51)
    assert record.duration_seconds == 90
    assert record.recording_ref is None


def test_inbound_call_nobody_answered_is_missed() -> None:
    _, (record,) = _run("inbound_missed")
    assert record.direction == "inbound"
    assert record.outcome == "missed"
    assert record.our_line == "101"  # the first extension rung, not the DID
    assert record.other_number == "+79037778899"
    assert record.answered_at is None
    assert record.duration_seconds == 0
    assert record.ended_at == _at(1700000215.29)


def test_outbound_busy_call() -> None:
    _, (record,) = _run("outbound_busy")
    assert (record.direction, record.outcome, record.other_number) == (
        "outbound", "busy", "79035556677")
    assert record.answered_at is None


def test_assembly_from_the_wire_in_small_reads() -> None:
    payload = f"{BANNER}\r\n".encode() + b"".join(wire(f) for f in fixture_frames("outbound_busy"))
    parser, assembler, out = AmiFrameParser(), CallAssembler(), []
    for i in range(0, len(payload), 7):
        out += assembler.feed_all(parser.feed(payload[i:i + 7]))
    assert [type(item).__name__ for item in out] == ["CallUpdate", "CallRecord"]


def test_interleaved_calls_are_kept_apart() -> None:
    a, b = fixture_messages("inbound_missed"), fixture_messages("outbound_busy")
    mixed = [m for pair in zip(a, b, strict=False) for m in pair] + a[len(b):]
    records = [i for i in CallAssembler().feed_all(mixed) if isinstance(i, CallRecord)]
    assert sorted((r.provider_call_id, r.outcome) for r in records) == [
        ("1700000200.60", "missed"), ("1700000300.70", "busy")]


def test_state_is_empty_after_calls_complete() -> None:
    assembler = CallAssembler()
    assembler.feed_all(fixture_messages("inbound_answered_recorded"))
    assert assembler.in_flight == 0


# ---- synthetic sequences for the rules the fixtures do not cover


def _chan(event: str, uid: str, lid: str, ts: float, **extra: str) -> dict[str, str]:
    return {"Event": event, "Uniqueid": uid, "Linkedid": lid, "Timestamp": f"{ts}", **extra}


def test_extension_calling_extension_is_internal() -> None:
    events = [
        _chan("Newchannel", "1.1", "1.1", 10, Channel="PJSIP/101-01", CallerIDNum="101",
              Context="from-internal", Exten="102"),
        _chan("Newchannel", "1.2", "1.1", 10.1, Channel="PJSIP/102-02", CallerIDNum="102",
              Context="from-internal", Exten="s"),
        _chan("DialEnd", "1.1", "1.1", 14, DestChannel="PJSIP/102-02", DialStatus="ANSWER"),
        _chan("Hangup", "1.2", "1.1", 20), _chan("Hangup", "1.1", "1.1", 20.2),
    ]
    (started, record) = CallAssembler().feed_all(events)
    assert isinstance(started, CallUpdate) and isinstance(record, CallRecord)
    assert (record.direction, record.our_line, record.other_number) == ("internal", "101", "102")
    assert record.duration_seconds == 6


@pytest.mark.parametrize(("rules", "expected"), [
    (LineRules(), "outbound"),  # 3-digit caller in an unknown context: one of ours
    (LineRules(trunk_channel_prefixes=("SIP/gw",)), "inbound"),
    (LineRules(extension_pattern=r"\d{5}"), "inbound"),
])
def test_direction_rules_are_configurable(rules: LineRules, expected: str) -> None:
    event = _chan("Newchannel", "2.1", "2.1", 1, Channel="SIP/gw-0001", CallerIDNum="555",
                  Context="custom", Exten="74950000000")
    (started,) = CallAssembler(rules).feed(event)
    assert isinstance(started, CallUpdate)
    assert started.direction == expected


def test_channel_peer_names() -> None:
    assert channel_peer("PJSIP/101-0000001b") == "101"
    assert channel_peer("PJSIP/mts-trunk-0000001a") == "mts-trunk"
    assert channel_peer("Local/104@from-queue-00000003;2") == "104"


def test_cdr_after_hangup_corrects_a_call_without_dial_evidence() -> None:
    # Answered by an application (no Dial, no bridge): only the CDR knows it was answered.
    assembler = CallAssembler()
    events = [
        _chan("Newchannel", "3.1", "3.1", 100, Channel="PJSIP/trunk-01", CallerIDNum="7999",
              Context="from-trunk", Exten="74950000000"),
        _chan("Hangup", "3.1", "3.1", 130),
    ]
    _, first = assembler.feed_all(events)
    assert isinstance(first, CallRecord) and first.outcome == "missed"
    (corrected,) = assembler.feed({"Event": "Cdr", "UniqueID": "3.1", "Disposition": "ANSWERED",
                                   "AnswerTime": "1970-01-01 00:01:45"})
    assert isinstance(corrected, CallRecord)
    assert (corrected.outcome, corrected.answered_at, corrected.duration_seconds) == (
        "answered", _at(105), 25)
    # the same CDR again changes nothing, so nothing is re-emitted
    assert assembler.feed({"Event": "Cdr", "UniqueID": "3.1", "Disposition": "ANSWERED",
                           "AnswerTime": "1970-01-01 00:01:45"}) == []


def test_legs_of_calls_that_began_before_we_connected_are_ignored() -> None:
    assembler = CallAssembler()
    assert assembler.feed(_chan("Newchannel", "4.2", "4.1", 1, Channel="PJSIP/101-9")) == []
    assert assembler.feed(_chan("Hangup", "4.2", "4.1", 2)) == []
    assert assembler.in_flight == 0


def test_without_timestamps_the_clock_is_used() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assembler = CallAssembler(clock=lambda: now)
    (started,) = assembler.feed({"Event": "Newchannel", "Uniqueid": "5.1", "Linkedid": "5.1",
                                 "Channel": "PJSIP/101-1", "CallerIDNum": "101",
                                 "Exten": "79990000000"})
    assert isinstance(started, CallUpdate) and started.started_at == now


def test_expire_forgets_calls_whose_end_was_lost() -> None:
    now = [datetime(2024, 1, 1, tzinfo=UTC)]
    assembler = CallAssembler(clock=lambda: now[0], stale_after=timedelta(hours=1))
    assembler.feed(_chan("Newchannel", "6.1", "6.1", 0, Channel="PJSIP/101-1",
                         CallerIDNum="101", Exten="79990000000"))
    now[0] += timedelta(minutes=59)
    assert assembler.expire() == []
    now[0] += timedelta(minutes=2)
    assert assembler.expire() == ["6.1"]
    assert assembler.in_flight == 0


def test_withheld_caller_id_is_not_a_number() -> None:
    assembler = CallAssembler()
    (started,) = assembler.feed(_chan("Newchannel", "7.1", "7.1", 1, Channel="PJSIP/trunk-7",
                                      CallerIDNum="<unknown>", Context="from-trunk",
                                      Exten="74950000000"))
    assert isinstance(started, CallUpdate)
    assert (started.direction, started.other_number) == ("inbound", None)
    (record,) = assembler.feed(_chan("Hangup", "7.1", "7.1", 9))
    assert isinstance(record, CallRecord)
    assert (record.other_number, record.our_line, record.outcome) == ("", "74950000000", "missed")
