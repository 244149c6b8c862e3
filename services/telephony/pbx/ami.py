"""Asterisk Manager Interface: wire framing, call assembly and a self-healing client.

Three layers, so the protocol logic can be tested without a socket:

* ``AmiFrameParser`` — bytes (split anywhere) in, ``dict`` messages out.
* ``CallAssembler`` — AMI events in, ``CallUpdate`` ("call started") and ``CallRecord``
  (call finished) out.  Legs are grouped by ``Linkedid``; the channel whose ``Uniqueid``
  equals the ``Linkedid`` is the one that started the call and decides its direction.
* ``AmiClient`` — plain blocking sockets (green under eventlet): login, read, feed the
  assembler, reconnect with back-off.

Event times come from the ``Timestamp`` header (``timestampevents = yes`` in
manager.conf, recommended) or, without it, from the moment we read the event.
"""
from __future__ import annotations

import itertools
import logging
import re
import socket
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar

from services.kit import clock as kit_clock
from services.kit.errors import ValidationError
from services.telephony.pbx.records import (
    CallEvent,
    CallRecord,
    CallUpdate,
    Direction,
    Outcome,
    utc_from_timestamp,
)

log = logging.getLogger(__name__)

BANNER_PREFIX = "Asterisk Call Manager/"
AmiMessage = dict[str, str]


class AmiError(Exception):
    """The AMI peer broke the protocol or stopped answering."""


class AmiProtocolError(AmiError):
    pass


class AmiAuthError(AmiError):
    """Login refused: wrong username/secret, or the user may not log in from here."""


# --------------------------------------------------------------------------- framing


class AmiFrameParser:
    """Incremental AMI framer.

    ``Key: Value`` lines; an empty line ends a message.  The server's first line is the
    banner ``Asterisk Call Manager/x.y.z`` with no blank line after it; it is kept in
    ``banner`` rather than returned.  A key sent twice in one message (``ChanVariable``,
    ``Output``) keeps every value, joined by ``\\n``.
    """

    def __init__(self, *, expect_banner: bool = True, max_line: int = 256 * 1024) -> None:
        self.banner: str | None = None
        self._expect_banner = expect_banner
        self._max_line = max_line
        self._buffer = bytearray()
        self._current: AmiMessage = {}

    def feed(self, data: bytes) -> list[AmiMessage]:
        self._buffer += data
        messages: list[AmiMessage] = []
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            line = bytes(self._buffer[start:end]).rstrip(b"\r")
            start = end + 1
            message = self._take_line(line.decode("utf-8", errors="replace"))
            if message is not None:
                messages.append(message)
        del self._buffer[:start]
        # A line this long is not AMI; refuse it rather than buffer without bound.
        if len(self._buffer) > self._max_line:
            raise AmiProtocolError(f"line longer than {self._max_line} bytes")
        return messages

    def _take_line(self, line: str) -> AmiMessage | None:
        if self._expect_banner and self.banner is None:
            if not line.startswith(BANNER_PREFIX):
                raise AmiProtocolError(f"not an Asterisk manager banner: {line[:80]!r}")
            self.banner = line
            return None
        if not line:
            message, self._current = self._current, {}
            return message or None  # stray blank lines between messages are harmless
        key, sep, value = line.partition(":")
        if not sep:  # free text (old "Command" output): keep it rather than lose it
            key, value = "Output", line
        key, value = key.strip(), value.strip()
        previous = self._current.get(key)
        self._current[key] = value if previous is None else f"{previous}\n{value}"
        return None


def encode_action(action: str, fields: Mapping[str, str]) -> bytes:
    """One AMI action, CRLF-framed.  CR/LF inside a value would start a new header."""
    lines = [f"Action: {action}"]
    for key, value in fields.items():
        if "\r" in value or "\n" in value or "\r" in key or "\n" in key:
            raise ValidationError("Переводы строк не допускаются.", field=key,
                                  key="text.line_break")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --------------------------------------------------------------------------- direction


@dataclass(frozen=True)
class LineRules:
    """How to tell our extensions from the outside world on this PBX.

    The channel that starts a call is a trunk when its channel name starts with a trunk
    prefix or its dialplan context is a trunk context; failing both, when its caller
    number does not look like an extension.  Prefixes win over contexts because a trunk
    is often pointed at a shared context.
    """

    extension_pattern: str = r"\d{1,4}"
    trunk_contexts: frozenset[str] = frozenset({"from-trunk", "from-pstn", "from-external"})
    extension_contexts: frozenset[str] = frozenset({"from-internal"})
    trunk_channel_prefixes: tuple[str, ...] = ()
    extension_channel_prefixes: tuple[str, ...] = ()

    def is_extension(self, number: str | None) -> bool:
        if not number:
            return False
        return re.fullmatch(self.extension_pattern, number) is not None

    def is_trunk(self, channel: str, context: str, caller: str) -> bool:
        if self.trunk_channel_prefixes and channel.startswith(self.trunk_channel_prefixes):
            return True
        if self.extension_channel_prefixes and channel.startswith(
                self.extension_channel_prefixes):
            return False
        if context in self.trunk_contexts:
            return True
        if context in self.extension_contexts:
            return False
        return not self.is_extension(caller)


def channel_peer(channel: str) -> str:
    """``PJSIP/101-0000001a`` -> ``101``; ``Local/101@from-queue-00000003;2`` -> ``101``."""
    _, _, rest = channel.partition("/")
    rest = rest.split(";", 1)[0]
    if "@" in rest:
        return rest.split("@", 1)[0]
    return rest.rsplit("-", 1)[0]


# --------------------------------------------------------------------------- assembly

_DIAL_MISSED = frozenset({"NOANSWER", "CANCEL"})
_CDR_OUTCOMES: dict[str, Outcome] = {
    "ANSWERED": "answered",
    "BUSY": "busy",
    "NO ANSWER": "missed",
    "FAILED": "failed",
    "CONGESTION": "failed",
}


@dataclass
class _Call:
    linkedid: str
    direction: Direction
    caller: str  # CallerIDNum of the channel that started the call
    dialed: str  # its Exten: our DID for inbound, the number/extension dialled otherwise
    started_at: datetime
    last_seen: datetime  # by our clock, not the PBX's: staleness is about what we receive
    live: set[str] = field(default_factory=set)
    members: set[str] = field(default_factory=set)
    first_target: str | None = None
    answered_at: datetime | None = None
    answered_by: str | None = None
    ended_at: datetime | None = None
    dial_statuses: set[str] = field(default_factory=set)
    cdr_outcome: Outcome | None = None
    cdr_answered_at: datetime | None = None
    recording: str | None = None
    emitted: CallRecord | None = None


def _lower_keys(message: Mapping[str, str]) -> dict[str, str]:
    # Asterisk is not consistent about case (Cdr says "UniqueID", the rest "Uniqueid").
    return {key.lower(): value for key, value in message.items()}


def _number(value: str | None) -> str:
    """A number field, with Asterisk's placeholders (withheld caller ID, the ``s``
    extension of a channel that was never given a number) turned into "none"."""
    value = (value or "").strip()
    return "" if value in {"<unknown>", "s", "anonymous", "Anonymous"} else value


def _parse_cdr_time(value: str, zone: tzinfo) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
    except ValueError:
        return None


class CallAssembler:
    """Turns a stream of AMI events into call notices and finished-call records.

    Pure: no I/O.  ``feed`` returns what the event completed: a ``CallUpdate`` with
    stage ``started`` at the first ``Newchannel`` of a ``Linkedid``, a ``CallRecord`` when
    its last channel hangs up.  ``Cdr`` events usually arrive after the last ``Hangup``;
    when one changes a finished record (only possible when the call had no Dial or bridge
    to judge by) the corrected record is returned again — consumers upsert, so that is
    safe.  State survives reconnects, so a call spanning a reconnect still completes;
    calls whose end was lost are dropped by ``expire``.
    """

    def __init__(
        self,
        rules: LineRules | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        cdr_timezone: tzinfo = UTC,
        stale_after: timedelta = timedelta(hours=6),
        keep_finished: int = 1024,
    ) -> None:
        self.rules = rules or LineRules()
        self._clock = clock or kit_clock.now
        self._cdr_timezone = cdr_timezone  # cdr_manager prints server-local wall time
        self._stale_after = stale_after
        self._keep_finished = keep_finished
        self._calls: dict[str, _Call] = {}
        self._finished: OrderedDict[str, _Call] = OrderedDict()
        self._channels: dict[str, str] = {}  # Uniqueid -> Linkedid

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    def feed(self, message: Mapping[str, str]) -> list[CallEvent]:
        event = _lower_keys(message)
        handler = self._HANDLERS.get(event.get("event", "").lower())
        if handler is None:
            return []
        return handler(self, event)

    def feed_all(self, messages: Iterable[Mapping[str, str]]) -> list[CallEvent]:
        return [item for message in messages for item in self.feed(message)]

    def expire(self, now: datetime | None = None) -> list[str]:
        """Forget calls we heard nothing of for ``stale_after``; returns their Linkedids."""
        limit = (now or self._clock()) - self._stale_after
        stale = [lid for lid, call in self._calls.items() if call.last_seen < limit]
        for linkedid in stale:
            call = self._calls.pop(linkedid)
            for uniqueid in call.members:
                self._channels.pop(uniqueid, None)
            log.warning("AMI call %s dropped: no events since %s", linkedid, call.last_seen)
        return stale

    # -- event handlers ---------------------------------------------------------------

    def _time(self, event: Mapping[str, str]) -> datetime:
        stamp = event.get("timestamp")
        if stamp:
            try:
                return utc_from_timestamp(float(stamp))
            except ValueError:
                pass
        return self._clock()

    def _live_call(self, event: Mapping[str, str]) -> _Call | None:
        linkedid = self._channels.get(event.get("uniqueid", "")) or event.get("linkedid", "")
        call = self._calls.get(linkedid)
        if call is not None:
            call.last_seen = self._clock()
        return call

    def _on_newchannel(self, event: dict[str, str]) -> list[CallEvent]:
        uniqueid, linkedid = event.get("uniqueid", ""), event.get("linkedid", "")
        call = self._calls.get(linkedid)
        if call is None:
            # Only the channel that started the call may open it: a leg whose call began
            # before we connected would give the call a wrong direction.
            if not uniqueid or uniqueid != linkedid or linkedid in self._finished:
                return []
            call = self._open(event)
            self._calls[linkedid] = call
            started: list[CallEvent] = [self._started(call)]
        else:
            call.last_seen = self._clock()
            started = []
        call.live.add(uniqueid)
        call.members.add(uniqueid)
        self._channels[uniqueid] = linkedid
        return started

    def _open(self, event: Mapping[str, str]) -> _Call:
        channel, context = event.get("channel", ""), event.get("context", "")
        caller, dialed = _number(event.get("calleridnum")), _number(event.get("exten"))
        if self.rules.is_trunk(channel, context, caller):
            direction: Direction = "inbound"
        elif self.rules.is_extension(dialed):
            direction = "internal"
        else:
            direction = "outbound"
        return _Call(event["linkedid"], direction, caller, dialed,
                     started_at=self._time(event), last_seen=self._clock())

    def _started(self, call: _Call) -> CallUpdate:
        our_line, other = (call.dialed, call.caller) if call.direction == "inbound" else (
            call.caller, call.dialed)
        return CallUpdate(
            provider="asterisk", provider_call_id=call.linkedid, stage="started",
            direction=call.direction, our_line=our_line or None, other_number=other or None,
            started_at=call.started_at,
        )

    def _on_dial_begin(self, event: dict[str, str]) -> list[CallEvent]:
        call = self._live_call(event)
        if call is not None and call.first_target is None:
            call.first_target = self._target(event)
        return []

    def _target(self, event: Mapping[str, str]) -> str:
        """Who a Dial rang: an extension when recognisable, else the number dialled."""
        for candidate in (_number(event.get("destcalleridnum")),
                          channel_peer(event.get("destchannel", ""))):
            if self.rules.is_extension(candidate):
                return candidate
        return event.get("destexten") or event.get("dialstring", "")

    def _on_dial_end(self, event: dict[str, str]) -> list[CallEvent]:
        call = self._live_call(event)
        status = event.get("dialstatus", "").upper()
        if call is None or not status:
            return []
        call.dial_statuses.add(status)
        if status == "ANSWER":
            self._mark_answered(call, self._time(event), self._target(event))
        return []

    def _mark_answered(self, call: _Call, when: datetime, by: str | None) -> None:
        if call.answered_at is None:
            call.answered_at = when
        if call.answered_by is None and self.rules.is_extension(by):
            call.answered_by = by

    def _on_bridge_enter(self, event: dict[str, str]) -> list[CallEvent]:
        call = self._live_call(event)
        try:
            together = int(event.get("bridgenumchannels", "0")) >= 2
        except ValueError:
            together = False
        if call is not None and together:  # the second party joined: they are talking
            peer = event.get("calleridnum", "")
            self._mark_answered(call, self._time(event), peer if peer != call.caller else None)
        return []

    def _on_var_set(self, event: dict[str, str]) -> list[CallEvent]:
        if event.get("variable", "").upper() != "MIXMONITOR_FILENAME":
            return []
        call = self._live_call(event)
        if call is not None and event.get("value"):
            call.recording = event["value"]
        return []

    def _on_hangup(self, event: dict[str, str]) -> list[CallEvent]:
        call = self._live_call(event)
        if call is None:
            return []
        call.live.discard(event.get("uniqueid", ""))
        call.ended_at = self._time(event)
        if call.live:
            return []
        return [self._finish(call)]

    def _finish(self, call: _Call) -> CallRecord:
        del self._calls[call.linkedid]
        self._finished[call.linkedid] = call
        while len(self._finished) > self._keep_finished:
            _, old = self._finished.popitem(last=False)
            for uniqueid in old.members:
                self._channels.pop(uniqueid, None)
        call.emitted = self._record(call)
        return call.emitted

    def _on_cdr(self, event: dict[str, str]) -> list[CallEvent]:
        linkedid = self._channels.get(event.get("uniqueid", ""), "")
        call = self._calls.get(linkedid) or self._finished.get(linkedid)
        outcome = _CDR_OUTCOMES.get(event.get("disposition", "").upper())
        if call is None or outcome is None:
            return []
        if call.cdr_outcome != "answered":  # one answered leg makes the call answered
            call.cdr_outcome = outcome
            call.cdr_answered_at = _parse_cdr_time(event.get("answertime", ""),
                                                   self._cdr_timezone)
        if call.emitted is None:
            return []
        record = self._record(call)
        if record == call.emitted:
            return []
        call.emitted = record
        return [record]

    _HANDLERS: ClassVar[dict[str, Callable[[CallAssembler, dict[str, str]], list[CallEvent]]]] = {
        "newchannel": _on_newchannel,
        "dialbegin": _on_dial_begin,
        "dialend": _on_dial_end,
        "bridgeenter": _on_bridge_enter,
        "varset": _on_var_set,
        "hangup": _on_hangup,
        "cdr": _on_cdr,
    }

    # -- building the record ----------------------------------------------------------

    def _outcome(self, call: _Call) -> tuple[Outcome, datetime | None]:
        """Outcome and answer time: Dial/bridge evidence first, the CDR only without it."""
        if call.answered_at is not None:
            return "answered", call.answered_at
        statuses = call.dial_statuses
        if statuses & _DIAL_MISSED:  # someone rang and nobody picked up
            return "missed", None
        if "BUSY" in statuses:
            return "busy", None
        if statuses:  # CHANUNAVAIL, CONGESTION, ...: the call never reached a phone
            return "failed", None
        if call.cdr_outcome == "answered":
            return "answered", call.cdr_answered_at or call.started_at
        if call.cdr_outcome is not None:
            return call.cdr_outcome, None
        # Nothing was dialled: an inbound call that ended in the IVR was missed; an
        # outgoing one that never dialled failed.
        return ("missed" if call.direction == "inbound" else "failed"), None

    def _lines(self, call: _Call) -> tuple[str, str]:
        if call.direction == "inbound":
            return call.answered_by or call.first_target or call.dialed, call.caller
        return call.caller, call.dialed or call.first_target or ""

    def _record(self, call: _Call) -> CallRecord:
        outcome, answered_at = self._outcome(call)
        ended_at = call.ended_at or call.started_at
        talk = (ended_at - answered_at).total_seconds() if answered_at else 0
        our_line, other = self._lines(call)
        return CallRecord(
            provider="asterisk", provider_call_id=call.linkedid, direction=call.direction,
            our_line=our_line, other_number=other, started_at=call.started_at,
            answered_at=answered_at, ended_at=ended_at,
            duration_seconds=max(0, round(talk)), outcome=outcome,
            recording_ref=call.recording,
        )


# --------------------------------------------------------------------------- client


class _Connection:
    """One AMI TCP session: framing on top of a socket, plus serialised writes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = AmiFrameParser()
        self.pending: deque[AmiMessage] = deque()
        self._send_lock = threading.Lock()

    def send(self, action: str, fields: Mapping[str, str]) -> None:
        with self._send_lock:
            self.sock.sendall(encode_action(action, fields))

    def fill(self, timeout: float | None) -> None:
        """Read once (up to ``timeout``); raises ``ConnectionError`` when the peer closed."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("AMI connection closed by the server")
        self.pending.extend(self.parser.feed(data))

    def next_message(self, timeout: float | None) -> AmiMessage:
        while not self.pending:
            self.fill(timeout)
        return self.pending.popleft()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone; closing is all that is left
        self.sock.close()


def reconnect_backoff(failures: int, base: float, cap: float) -> float:
    """Delay before the next connect: ``base`` after a clean drop, doubling per failure."""
    return min(base * 2 ** max(0, failures - 1), cap)


class AmiClient:
    """Keeps one AMI session alive and turns its events into call notices.

    ``run()`` blocks until ``stop()``; inside a nameko service spawn it with
    ``container.spawn_managed_thread`` (blocking sockets are green under eventlet).
    ``start()`` runs it in a daemon thread instead.  A dropped connection or a refused
    login is retried after ``reconnect_delay``, doubling up to ``max_reconnect_delay``;
    the back-off resets after a successful login.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        on_record: Callable[[CallRecord], Any],
        on_started: Callable[[CallUpdate], Any],
        *,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 60.0,
        ping_interval: float | None = 30.0,
        connect_timeout: float = 10.0,
        events: str = "on",
        assembler: CallAssembler | None = None,
        on_error: Callable[[Exception], Any] | None = None,
    ) -> None:
        encode_action("Login", {"Username": username, "Secret": secret})  # refuse CR/LF now
        self.host, self.port = host, port
        self._username, self._secret = username, secret
        self._on_record, self._on_started, self._on_error = on_record, on_started, on_error
        self.reconnect_delay, self.max_reconnect_delay = reconnect_delay, max_reconnect_delay
        self.ping_interval, self.connect_timeout = ping_interval, connect_timeout
        self._events = events
        self.assembler = assembler or CallAssembler()
        self.last_error: Exception | None = None
        self.banner: str | None = None
        self._failures = 0
        self._action_ids = itertools.count(1)
        self._stopping = threading.Event()
        self._finished = threading.Event()  # set whenever run() is not running
        self._finished.set()
        self._connection: _Connection | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> threading.Thread:
        self._finished.clear()
        self._thread = threading.Thread(target=self.run, name="ami-client", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 5.0) -> None:
        """Log off, then wait (up to ``timeout``) for ``run()`` to return."""
        self._stopping.set()
        inside = self._thread is threading.current_thread()
        connection = self._connection
        if connection is not None:
            try:
                connection.send("Logoff", {"ActionID": self._next_action_id()})
            except OSError:
                pass  # the connection is already broken; closing it below is enough
            # Asterisk answers Goodbye and hangs up, which ends the reader.  Closing right
            # away could reset the link (unread data) before the Logoff is even read.
            if inside or not self._finished.wait(min(timeout, 1.0)):
                connection.close()  # no goodbye: wake the reader blocked in recv()
        if not inside:
            self._finished.wait(timeout)

    def run(self) -> None:
        self._finished.clear()
        try:
            while not self._stopping.is_set():
                try:
                    self._session()
                except Exception as exc:  # noqa: BLE001 - every failure means "reconnect"
                    if self._stopping.is_set():
                        break
                    self._failed(exc)
                self._stopping.wait(self._backoff())
        finally:
            self._finished.set()

    def _backoff(self) -> float:
        return reconnect_backoff(self._failures, self.reconnect_delay, self.max_reconnect_delay)

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        self.last_error = exc
        level = logging.ERROR if isinstance(exc, AmiAuthError) else logging.WARNING
        log.log(level, "AMI %s:%s: %s (retry %d)", self.host, self.port, exc, self._failures)
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:  # reporting must not stop the reconnect loop
                log.exception("AMI on_error callback failed")

    # -- one session ------------------------------------------------------------------

    def _session(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        connection = _Connection(sock)
        self._connection = connection
        try:
            if self._stopping.is_set():  # stop() ran while we were connecting
                return
            self._handshake(connection)
            self._failures = 0
            self.assembler.expire()  # calls whose end fell into the gap will never end
            self._pump(connection)
        finally:
            self._connection = None
            connection.close()

    def _handshake(self, connection: _Connection) -> None:
        while connection.parser.banner is None:
            connection.fill(self.connect_timeout)
        self.banner = connection.parser.banner
        action_id = self._next_action_id()
        connection.send("Login", {"ActionID": action_id, "Username": self._username,
                                  "Secret": self._secret, "Events": self._events})
        while True:
            message = connection.next_message(self.connect_timeout)
            if message.get("ActionID") == action_id and "Response" in message:
                break
            self._handle(message)  # an event that slipped in before the answer
        if message["Response"].lower() != "success":
            reason = message.get("Message", message["Response"])
            raise AmiAuthError(f"AMI login as {self._username!r} refused: {reason}")
        log.info("AMI %s:%s: logged in (%s)", self.host, self.port, self.banner)

    def _pump(self, connection: _Connection) -> None:
        # Runs until the link ends, even after stop(): the server's Goodbye (or stop()'s
        # forced close) ends it, and leaving early could reset it before Logoff is read.
        ping_sent = False
        while True:
            try:
                message = connection.next_message(self.ping_interval)
            except TimeoutError:
                # Silence: ask for a Pong once; a second silent interval means the link
                # is half-open (NAT, a dead PBX) and only a reconnect will tell.
                if ping_sent:
                    raise AmiError(f"no answer to Ping within {self.ping_interval}s") from None
                connection.send("Ping", {"ActionID": self._next_action_id()})
                self.assembler.expire()
                ping_sent = True
                continue
            ping_sent = False
            self._handle(message)

    def _handle(self, message: AmiMessage) -> None:
        if "Event" not in message:
            return  # Pong and other action responses only prove the link is alive
        for item in self.assembler.feed(message):
            try:
                if isinstance(item, CallRecord):
                    self._on_record(item)
                else:
                    self._on_started(item)
            except Exception:  # a consumer bug must not cost us the AMI session
                log.exception("AMI callback failed for call %s", item.provider_call_id)

    def _next_action_id(self) -> str:
        return f"crm-{next(self._action_ids)}"
