"""AmiClient against the local AMI stand-in: real sockets, no sleeps (queues + timeouts)."""
import queue
from collections.abc import Iterator

import pytest

from services.telephony.pbx.ami import AmiAuthError, AmiClient, reconnect_backoff
from services.telephony.pbx.records import CallRecord, CallUpdate
from tests.support.pbx_standins import AmiStandIn, LoginAttempt, fixture_frames

WAIT = 5.0


class Sink:
    def __init__(self) -> None:
        self.records: queue.Queue[CallRecord] = queue.Queue()
        self.started: queue.Queue[CallUpdate] = queue.Queue()
        self.errors: queue.Queue[Exception] = queue.Queue()


@pytest.fixture
def ami() -> Iterator[AmiStandIn]:
    with AmiStandIn(username="crm", secret="s3cret") as server:
        yield server


@pytest.fixture
def sink() -> Sink:
    return Sink()


def _client(ami: AmiStandIn, sink: Sink, secret: str = "s3cret", **kwargs: object) -> AmiClient:
    options: dict[str, object] = {"reconnect_delay": 0.01, "max_reconnect_delay": 0.05,
                                  "connect_timeout": 2.0, "on_error": sink.errors.put}
    options.update(kwargs)
    return AmiClient(ami.host, ami.port, "crm", secret, sink.records.put, sink.started.put,
                     **options)  # type: ignore[arg-type]


def test_logs_in_and_turns_events_into_records(ami: AmiStandIn, sink: Sink) -> None:
    ami.queue_session(fixture_frames("inbound_answered_recorded"))
    client = _client(ami, sink)
    thread = client.start()
    try:
        assert ami.logins.get(timeout=WAIT) == LoginAttempt("crm", accepted=True)
        assert sink.started.get(timeout=WAIT).provider_call_id == "1700000000.41"
        record = sink.records.get(timeout=WAIT)
        assert (record.outcome, record.our_line) == ("answered", "101")
        assert record.recording_ref is not None
        assert client.banner == "Asterisk Call Manager/5.0.1"
    finally:
        client.stop()
    assert not thread.is_alive()
    assert sink.errors.empty()


def test_reconnects_after_a_drop_and_finishes_the_call(ami: AmiStandIn, sink: Sink) -> None:
    inbound = fixture_frames("inbound_answered_recorded")
    cut = 8  # after DialBegin: the call is ringing when the link dies
    ami.queue_session(inbound, drop_after=cut)
    ami.queue_session(inbound[cut:] + fixture_frames("outbound_answered"))
    client = _client(ami, sink)
    client.start()
    try:
        records = [sink.records.get(timeout=WAIT), sink.records.get(timeout=WAIT)]
        assert [r.provider_call_id for r in records] == ["1700000000.41", "1700000100.50"]
        assert records[0].outcome == "answered"  # state survived the reconnect
        assert isinstance(sink.errors.get(timeout=WAIT), ConnectionError)
        logins = [ami.logins.get(timeout=WAIT) for _ in range(2)]
        assert all(attempt.accepted for attempt in logins)
    finally:
        client.stop()


def test_server_side_drop_of_an_idle_session_reconnects(ami: AmiStandIn, sink: Sink) -> None:
    client = _client(ami, sink)
    client.start()
    try:
        assert ami.logins.get(timeout=WAIT).accepted
        ami.drop_connections()
        assert ami.logins.get(timeout=WAIT).accepted
    finally:
        client.stop()


def test_wrong_password_is_a_clear_error_and_retried(ami: AmiStandIn, sink: Sink) -> None:
    client = _client(ami, sink, secret="wrong")
    client.start()
    try:
        errors = [sink.errors.get(timeout=WAIT) for _ in range(2)]
        assert all(isinstance(e, AmiAuthError) for e in errors)
        assert "Authentication failed" in str(errors[0])
        assert "wrong" not in str(errors[0])  # the secret never lands in logs
        assert ami.logins.get(timeout=WAIT) == LoginAttempt("crm", accepted=False)
        assert ami.logins.get(timeout=WAIT) == LoginAttempt("crm", accepted=False)
        assert isinstance(client.last_error, AmiAuthError)
    finally:
        client.stop()
    assert sink.records.empty()


def test_idle_link_is_kept_alive_with_ping(ami: AmiStandIn, sink: Sink) -> None:
    client = _client(ami, sink, ping_interval=0.05)
    client.start()
    try:
        assert ami.actions.get(timeout=WAIT) == "login"
        assert ami.actions.get(timeout=WAIT) == "ping"
        assert ami.actions.get(timeout=WAIT) == "ping"  # answered, so still the same session
        assert sink.errors.empty()
    finally:
        client.stop()


def test_unanswered_ping_means_a_dead_link_and_a_reconnect(ami: AmiStandIn, sink: Sink) -> None:
    ami.answer_pings = False
    client = _client(ami, sink, ping_interval=0.05)
    client.start()
    try:
        assert ami.logins.get(timeout=WAIT).accepted
        assert "Ping" in str(sink.errors.get(timeout=WAIT))
        assert ami.logins.get(timeout=WAIT).accepted
    finally:
        client.stop()


def test_stop_sends_logoff(ami: AmiStandIn, sink: Sink) -> None:
    client = _client(ami, sink)
    thread = client.start()
    assert ami.actions.get(timeout=WAIT) == "login"
    client.stop()
    assert ami.actions.get(timeout=WAIT) == "logoff"
    assert not thread.is_alive()


def test_a_failing_callback_does_not_cost_the_session(ami: AmiStandIn, sink: Sink) -> None:
    def explode(update: CallUpdate) -> None:
        raise RuntimeError("consumer bug")

    ami.queue_session(fixture_frames("outbound_busy"))
    client = AmiClient(ami.host, ami.port, "crm", "s3cret", sink.records.put, explode,
                       reconnect_delay=0.01, on_error=sink.errors.put)
    client.start()
    try:
        assert sink.records.get(timeout=WAIT).outcome == "busy"
        assert sink.errors.empty()
    finally:
        client.stop()


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [reconnect_backoff(n, 1.0, 10.0) for n in range(6)] == [1, 1, 2, 4, 8, 10]
