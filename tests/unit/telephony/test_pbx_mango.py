import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.kit.errors import Forbidden, ValidationError
from services.telephony.pbx.mango import MangoWebhooks, mango_outcome, mango_sign
from services.telephony.pbx.records import CallRecord, CallUpdate

KEY, SALT = "vpbx400123456", "s4lt-9f8e7d"
ENTRY = "MTAwMDY3NjE1OjE0MzQ4NzA0NDMz"


def _form(payload: dict[str, Any] | str, key: str = KEY, salt: str = SALT) -> dict[str, str]:
    raw = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"),
                                                              ensure_ascii=False)
    # written out independently of the module: sha256 over key + raw json + salt, hex
    sign = hashlib.sha256((key + raw + salt).encode("utf-8")).hexdigest()
    return {"vpbx_api_key": key, "sign": sign, "json": raw}


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _call(seq: int, state: str, call_id: str = "leg-1", **extra: Any) -> dict[str, Any]:
    return {"entry_id": ENTRY, "call_id": call_id, "timestamp": 1700000000 + seq, "seq": seq,
            "call_state": state, "location": "abonent",
            "from": {"number": "79161234567"},
            "to": {"extension": "101", "number": "sip:anna@vpbx400123456.mangosip.ru",
                   "line_number": "74951234567"}, **extra}


@pytest.fixture
def hooks() -> MangoWebhooks:
    return MangoWebhooks(KEY, SALT)


def test_sign_matches_the_documented_formula() -> None:
    raw = '{"entry_id":"x"}'
    assert mango_sign(KEY, raw, SALT) == _form(raw)["sign"]


def test_signature_is_checked_on_the_raw_json(hooks: MangoWebhooks) -> None:
    form = _form(_call(1, "Appeared"))
    form["json"] = form["json"].replace(",", ", ")  # same data, different bytes
    with pytest.raises(Forbidden, match="sign") as err:
        hooks.handle("events/call", form)
    assert err.value.details["reason"] == "wrong_sign"


def test_wrong_key_is_forbidden(hooks: MangoWebhooks) -> None:
    with pytest.raises(Forbidden, match="vpbx_api_key") as err:
        hooks.handle("events/call", _form(_call(1, "Appeared"), key="vpbx999"))
    assert err.value.details["reason"] == "wrong_key"


def test_wrong_salt_is_forbidden(hooks: MangoWebhooks) -> None:
    with pytest.raises(Forbidden) as err:
        hooks.handle("events/summary", _form({"entry_id": ENTRY}, salt="other"))
    assert err.value.details["reason"] == "wrong_sign"


def test_missing_sign_is_forbidden(hooks: MangoWebhooks) -> None:
    form = _form(_call(1, "Appeared"))
    del form["sign"]
    with pytest.raises(Forbidden):
        hooks.handle("events/call", form)


def test_signed_garbage_is_a_validation_error(hooks: MangoWebhooks) -> None:
    with pytest.raises(ValidationError) as err:
        hooks.handle("events/call", _form("not json"))
    assert err.value.field == "json"
    with pytest.raises(ValidationError) as err:
        hooks.handle("events/call",
                     _form({"call_id": "x", "timestamp": 1, "call_state": "Appeared"}))
    assert err.value.field == "json.seq"
    with pytest.raises(ValidationError) as err:
        hooks.handle("events/call", _form({"call_id": "x", "timestamp": 1, "seq": 1,
                                           "call_state": "Appeared"}))
    assert err.value.field == "json.entry_id"


def test_call_events_become_started_and_answered_updates(hooks: MangoWebhooks) -> None:
    started = hooks.handle("events/call", _form(_call(1, "Appeared")))
    assert started == CallUpdate(
        provider="mango", provider_call_id=ENTRY, stage="started", direction="inbound",
        our_line="101", other_number="79161234567", started_at=_at(1700000001))
    answered = hooks.handle("/events/call", _form(_call(2, "Connected")))
    assert isinstance(answered, CallUpdate)
    assert (answered.stage, answered.answered_at) == ("answered", _at(1700000002))
    assert hooks.handle("events/call", _form(_call(3, "Disconnected",
                                                   disconnect_reason=1110))) is None


def test_out_of_order_events_never_overwrite_newer_state(hooks: MangoWebhooks) -> None:
    # Connected (seq 2) overtakes Appeared (seq 1): the late Appeared must not "restart"
    first = hooks.handle("events/call", _form(_call(2, "Connected")))
    assert isinstance(first, CallUpdate) and first.stage == "answered"
    assert hooks.handle("events/call", _form(_call(1, "Appeared"))) is None
    assert hooks.handle("events/call", _form(_call(2, "Connected"))) is None  # duplicate
    # another leg of the same call has its own seq counter
    other_leg = hooks.handle("events/call", _form(_call(1, "Appeared", call_id="leg-2")))
    assert isinstance(other_leg, CallUpdate) and other_leg.stage == "started"


def test_nothing_passes_after_the_summary(hooks: MangoWebhooks) -> None:
    summary = {"entry_id": ENTRY, "call_direction": 1, "from": {"number": "79161234567"},
               "to": {"extension": "101"}, "line_number": "74951234567",
               "create_time": 1700000000, "forward_time": 1700000003, "talk_time": 1700000006,
               "end_time": 1700000071, "entry_result": 1, "disconnect_reason": 1110}
    assert isinstance(hooks.handle("events/summary", _form(summary)), CallRecord)
    assert hooks.handle("events/call", _form(_call(5, "Connected", call_id="late"))) is None


def test_inbound_answered_summary(hooks: MangoWebhooks) -> None:
    summary = {"entry_id": ENTRY, "call_direction": 1,
               "from": {"number": "79161234567"},
               "to": {"extension": "101", "number": "sip:anna@vpbx400123456.mangosip.ru"},
               "line_number": "74951234567", "create_time": 1700000000,
               "forward_time": 1700000003, "talk_time": 1700000006, "end_time": 1700000071,
               "entry_result": 1, "disconnect_reason": 1110}
    assert hooks.handle("events/summary", _form(summary)) == CallRecord(
        provider="mango", provider_call_id=ENTRY, direction="inbound", our_line="101",
        other_number="79161234567", started_at=_at(1700000000), answered_at=_at(1700000006),
        ended_at=_at(1700000071), duration_seconds=65, outcome="answered")


def test_outbound_busy_summary(hooks: MangoWebhooks) -> None:
    summary = {"entry_id": "E2", "call_direction": 2,
               "from": {"extension": "102", "number": "sip:ivan@vpbx400123456.mangosip.ru"},
               "to": {"number": "79035556677"}, "line_number": "74951234567",
               "create_time": 1700000300, "forward_time": 0, "talk_time": 0,
               "end_time": 1700000304, "entry_result": 0, "disconnect_reason": 1121}
    record = hooks.handle("events/summary", _form(summary))
    assert isinstance(record, CallRecord)
    assert (record.direction, record.our_line, record.other_number, record.outcome) == (
        "outbound", "102", "79035556677", "busy")
    assert (record.answered_at, record.duration_seconds) == (None, 0)


def test_internal_missed_summary(hooks: MangoWebhooks) -> None:
    summary = {"entry_id": "E3", "call_direction": 0, "from": {"extension": "101"},
               "to": {"extension": "102"}, "create_time": 1700000400, "forward_time": 0,
               "talk_time": 0, "end_time": 1700000420, "entry_result": 0,
               "disconnect_reason": 1111}
    record = hooks.handle("events/summary", _form(summary))
    assert isinstance(record, CallRecord)
    assert (record.direction, record.our_line, record.other_number, record.outcome) == (
        "internal", "101", "102", "missed")


@pytest.mark.parametrize(("result", "reason", "outcome"), [
    (1, 1110, "answered"), (0, 1110, "missed"), (0, 1163, "missed"), (0, 1121, "busy"),
    (0, 1131, "failed"), (0, 2102, "failed"), (0, 3200, "failed"), (0, 5003, "failed"),
])
def test_outcome_from_result_and_reason(result: int, reason: int, outcome: str) -> None:
    assert mango_outcome(result, reason) == outcome


def test_record_added_becomes_a_recording_update(hooks: MangoWebhooks) -> None:
    payload = {"entry_id": ENTRY, "product_id": 400123456, "user_id": 4001,
               "recording_id": "MToxMDA2NzYxNToxNDM0ODcwNDQzMzow", "timestamp": 1700000080}
    assert hooks.handle("events/record/added", _form(payload)) == CallUpdate(
        provider="mango", provider_call_id=ENTRY, stage="recording",
        recording_ref="MToxMDA2NzYxNToxNDM0ODcwNDQzMzow")


def test_unused_events_are_verified_then_ignored(hooks: MangoWebhooks) -> None:
    assert hooks.handle("events/dtmf", _form({"entry_id": ENTRY, "dtmf": "1"})) is None
    with pytest.raises(Forbidden):
        hooks.handle("events/dtmf", _form({"entry_id": ENTRY}, salt="nope"))
