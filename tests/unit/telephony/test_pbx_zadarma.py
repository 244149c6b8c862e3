import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.kit.errors import Forbidden, ValidationError
from services.telephony.pbx.records import CallRecord, CallUpdate
from services.telephony.pbx.zadarma import ZadarmaWebhooks, zadarma_outcome, zadarma_signature

SECRET = "a1b2c3d4e5f6"
MSK = timezone(timedelta(hours=3))


def _sign(*parts: str, secret: str = SECRET) -> str:
    # Zadarma's PHP: base64_encode(hash_hmac('sha1', $s, $secret)) -- hash_hmac gives hex
    hex_digest = hmac.new(secret.encode(), "".join(parts).encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(hex_digest.encode()).decode()


@pytest.fixture
def hooks() -> ZadarmaWebhooks:
    return ZadarmaWebhooks(SECRET, timezone=MSK)


START = {"event": "NOTIFY_START", "call_start": "2023-11-15 01:13:20",
         "pbx_call_id": "in_3f2a9c1d", "caller_id": "79161234567", "called_did": "74951234567"}
END = {**START, "event": "NOTIFY_END", "internal": "101", "duration": "65",
       "disposition": "answered", "status_code": "16", "is_recorded": "1",
       "call_id_with_rec": "1700000000.4112"}
OUT_START = {"event": "NOTIFY_OUT_START", "call_start": "2023-11-15 01:15:00",
             "pbx_call_id": "out_77ab01", "internal": "102", "destination": "79035556677"}
OUT_END = {**OUT_START, "event": "NOTIFY_OUT_END", "caller_id": "74951234567",
           "duration": "0", "disposition": "busy", "status_code": "17", "is_recorded": "0",
           "call_id_with_rec": ""}
RECORD = {"event": "NOTIFY_RECORD", "pbx_call_id": "in_3f2a9c1d",
          "call_id_with_rec": "1700000000.4112"}
RECEIVED = datetime(2023, 11, 14, 22, 14, 31, tzinfo=UTC)


def test_signature_is_base64_of_the_hex_digest() -> None:
    expected = _sign("79161234567", "74951234567", "2023-11-15 01:13:20")
    assert zadarma_signature(SECRET, "79161234567749512345672023-11-15 01:13:20") == expected
    assert len(base64.b64decode(expected)) == 40  # 40 hex characters, not 20 raw bytes


def test_echo_check(hooks: ZadarmaWebhooks) -> None:
    assert hooks.echo({"zd_echo": "f4c2a1"}) == "f4c2a1"
    assert hooks.echo({}) is None


def test_notify_start(hooks: ZadarmaWebhooks) -> None:
    sig = _sign(START["caller_id"], START["called_did"], START["call_start"])
    assert hooks.handle(START, sig) == CallUpdate(
        provider="zadarma", provider_call_id="in_3f2a9c1d", stage="started",
        direction="inbound", our_line="74951234567", other_number="79161234567",
        started_at=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC))


def test_notify_end_answered_and_recorded(hooks: ZadarmaWebhooks) -> None:
    sig = _sign(END["caller_id"], END["called_did"], END["call_start"])
    record = hooks.handle(END, sig, received_at=RECEIVED)
    assert record == CallRecord(
        provider="zadarma", provider_call_id="in_3f2a9c1d", direction="inbound",
        our_line="101", other_number="79161234567",
        started_at=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
        answered_at=datetime(2023, 11, 14, 22, 13, 26, tzinfo=UTC), ended_at=RECEIVED,
        duration_seconds=65, outcome="answered", recording_ref="1700000000.4112")


def test_notify_end_missed(hooks: ZadarmaWebhooks) -> None:
    form = {**END, "disposition": "no answer", "duration": "0", "is_recorded": "0",
            "internal": ""}
    record = hooks.handle(form, _sign(form["caller_id"], form["called_did"],
                                      form["call_start"]), received_at=RECEIVED)
    assert isinstance(record, CallRecord)
    assert (record.outcome, record.answered_at, record.recording_ref, record.our_line) == (
        "missed", None, None, "74951234567")


def test_notify_out_start(hooks: ZadarmaWebhooks) -> None:
    update = hooks.handle(OUT_START, _sign("102", "79035556677", "2023-11-15 01:15:00"))
    assert isinstance(update, CallUpdate)
    assert (update.stage, update.direction, update.our_line, update.other_number) == (
        "started", "outbound", "102", "79035556677")


def test_notify_out_end_busy(hooks: ZadarmaWebhooks) -> None:
    record = hooks.handle(OUT_END, _sign("102", "79035556677", "2023-11-15 01:15:00"),
                          received_at=datetime(2023, 11, 14, 22, 15, 4, tzinfo=UTC))
    assert isinstance(record, CallRecord)
    assert (record.direction, record.outcome, record.duration_seconds) == (
        "outbound", "busy", 0)


def test_notify_record(hooks: ZadarmaWebhooks) -> None:
    update = hooks.handle(RECORD, _sign("in_3f2a9c1d", "1700000000.4112"))
    assert update == CallUpdate(provider="zadarma", provider_call_id="in_3f2a9c1d",
                                stage="recording", recording_ref="1700000000.4112")


@pytest.mark.parametrize("form", [START, END, OUT_START, OUT_END, RECORD])
def test_wrong_signature_is_forbidden(hooks: ZadarmaWebhooks, form: dict[str, str]) -> None:
    with pytest.raises(Forbidden) as err:
        hooks.handle(form, _sign("anything", secret="not-the-secret"))
    assert err.value.details["reason"] == "wrong_signature"


def test_tampered_field_breaks_the_signature(hooks: ZadarmaWebhooks) -> None:
    sig = _sign(START["caller_id"], START["called_did"], START["call_start"])
    with pytest.raises(Forbidden):
        hooks.handle({**START, "caller_id": "79990000000"}, sig)


def test_missing_signature_is_forbidden(hooks: ZadarmaWebhooks) -> None:
    with pytest.raises(Forbidden) as err:
        hooks.handle(START, None)
    assert err.value.details["reason"] == "missing_signature"


def test_unknown_events_are_ignored_unread(hooks: ZadarmaWebhooks) -> None:
    assert hooks.handle({"event": "SMS", "result": "x"}, None) is None


def test_bad_call_start_is_a_validation_error(hooks: ZadarmaWebhooks) -> None:
    form = {**START, "call_start": "15.11.2023 01:13"}
    with pytest.raises(ValidationError) as err:
        hooks.handle(form, _sign(form["caller_id"], form["called_did"], form["call_start"]))
    assert err.value.field == "call_start"


@pytest.mark.parametrize(("disposition", "outcome"), [
    ("answered", "answered"), ("busy", "busy"), ("cancel", "missed"),
    ("no answer", "missed"), ("failed", "failed"), ("no money", "failed"),
    ("unallocated number", "failed"),
])
def test_dispositions(disposition: str, outcome: str) -> None:
    assert zadarma_outcome(disposition) == outcome
