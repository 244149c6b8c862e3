"""Local stand-ins for a PBX: an AMI server and a recordings HTTP server.

Both listen on 127.0.0.1 with an ephemeral port, run in daemon threads and are context
managers::

    with AmiStandIn(username="crm", secret="s3cret") as ami:
        ami.queue_session(fixture_frames("inbound_answered_recorded"), drop_after=5)
        client = AmiClient(ami.host, ami.port, "crm", "s3cret", on_record, on_started)

    with RecordingServer({"/rec/call.wav": make_wav()}) as http:
        urllib.request.urlopen(http.url("/rec/call.wav"))

The AMI stand-in speaks the wire protocol like Asterisk 16 (banner, ``Login``, ``Ping``,
``Logoff``) and replays recorded event sequences from ``tests/fixtures/ami``.  Each
successful login takes the next queued session; a session may drop the connection after
some frames, which is how reconnects are tested.  Its fixture reader is deliberately
independent of the code under test.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import queue
import re
import socket
import socketserver
import struct
import threading
import time
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
BANNER = "Asterisk Call Manager/5.0.1"


# --------------------------------------------------------------------------- fixtures


def fixture_frames(name: str) -> list[str]:
    """The messages of ``tests/fixtures/ami/<name>.ami``, each as its raw text block."""
    text = (FIXTURES / f"{name}.ami").read_text(encoding="utf-8")
    return [block for block in re.split(r"\n\s*\n", text) if block.strip()]


def frame_fields(frame: str) -> dict[str, str]:
    """``Key: Value`` lines of one frame as a dict (test-side reference parser)."""
    fields: dict[str, str] = {}
    for line in frame.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def fixture_frames_renumbered(name: str, suffix: str,
                              numbers: Mapping[str, str] | None = None) -> list[str]:
    """A fixture's frames with every Uniqueid/Linkedid made unique by ``suffix`` (the same
    recorded call replayed as a new call), and phone numbers swapped per ``numbers``."""
    frames = fixture_frames(name)
    for old, new in (numbers or {}).items():
        frames = [frame.replace(old, new) for frame in frames]
    ids = sorted({value for frame in frames for key, value in frame_fields(frame).items()
                  if key.lower() in ("uniqueid", "linkedid", "destuniqueid", "destlinkedid")},
                 key=len, reverse=True)
    renamed = []
    for frame in frames:
        for old in ids:
            frame = re.sub(rf"(?m)^([A-Za-z]+: ){re.escape(old)}$", rf"\g<1>{old}{suffix}",
                           frame)
        renamed.append(frame)
    return renamed


def fixture_messages(name: str) -> list[dict[str, str]]:
    return [frame_fields(frame) for frame in fixture_frames(name)]


def wire(frame: str) -> bytes:
    """A frame as Asterisk sends it: CRLF line ends and a blank line after."""
    return ("\r\n".join(frame.strip("\n").splitlines()) + "\r\n\r\n").encode()


# --------------------------------------------------------------------------- AMI server


@dataclass(frozen=True)
class LoginAttempt:
    username: str
    accepted: bool


@dataclass
class _Session:
    frames: list[str]
    drop_after: int | None


class _AmiHandler(socketserver.BaseRequestHandler):
    server: _AmiTcpServer

    def handle(self) -> None:
        standin = self.server.standin
        standin._track(self.request, add=True)
        try:
            self._converse(standin)
        except OSError:
            pass  # the client went away or the test dropped us: both are normal here
        finally:
            standin._track(self.request, add=False)

    def _converse(self, standin: AmiStandIn) -> None:
        self.request.sendall(f"{standin.banner}\r\n".encode())
        reader = self.request.makefile("rb")
        while (action := _read_action(reader)) is not None:
            if not self._answer(standin, action):
                return

    def _answer(self, standin: AmiStandIn, action: dict[str, str]) -> bool:
        """Reply to one action; ``False`` ends the connection."""
        name = action.get("Action", "").lower()
        standin.actions.put(name)
        reply = {"ActionID": action["ActionID"]} if "ActionID" in action else {}
        if name == "login":
            return self._login(standin, action, reply)
        if name == "ping" and not standin.answer_pings:
            pass  # a half-open link: the request vanishes without an answer
        elif name == "ping":
            self._send({"Response": "Success", **reply, "Ping": "Pong",
                        "Timestamp": f"{time.time():.6f}"})
        elif name == "logoff":
            self._send({"Response": "Goodbye", **reply, "Message": "Thanks for all the fish."})
            return False
        else:
            self._send({"Response": "Error", **reply, "Message": "Invalid/unknown command"})
        return True

    def _login(self, standin: AmiStandIn, action: dict[str, str],
               reply: dict[str, str]) -> bool:
        ok = (action.get("Username") == standin.username
              and action.get("Secret") == standin.secret)
        standin.logins.put(LoginAttempt(action.get("Username", ""), ok))
        if not ok:  # Asterisk answers, then hangs up on a failed login
            self._send({"Response": "Error", **reply, "Message": "Authentication failed"})
            return False
        self._send({"Response": "Success", **reply, "Message": "Authentication accepted"})
        self._send({"Event": "FullyBooted", "Privilege": "system,all", "Uptime": "3600",
                    "LastReload": "3600", "Status": "Fully Booted"})
        return self._replay(standin.next_session())

    def _replay(self, session: _Session | None) -> bool:
        if session is None:
            return True
        for count, frame in enumerate(session.frames, start=1):
            with self.server.standin.write_lock:
                self.request.sendall(wire(frame))
            if session.drop_after is not None and count >= session.drop_after:
                self.request.shutdown(socket.SHUT_RDWR)
                return False
        return True

    def _send(self, fields: Mapping[str, str]) -> None:
        with self.server.standin.write_lock:
            self.request.sendall(wire("\n".join(f"{k}: {v}" for k, v in fields.items())))


def _read_action(reader: Any) -> dict[str, str] | None:
    fields: dict[str, str] = {}
    while True:
        line = reader.readline()
        if not line:
            return None
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        if not text:
            if fields:
                return fields
            continue
        key, _, value = text.partition(":")
        fields[key.strip()] = value.strip()


class _AmiTcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, standin: AmiStandIn) -> None:
        self.standin = standin
        super().__init__(("127.0.0.1", 0), _AmiHandler)


class AmiStandIn:
    """A real TCP AMI endpoint on 127.0.0.1 that replays recorded event sequences.

    ``logins`` is a queue of ``LoginAttempt`` (one per Login action, accepted or not) and
    ``actions`` one of every action name received (lower case), for tests to wait on.
    Set ``answer_pings = False`` to play a half-open link that swallows ``Ping``.
    ``queue_session(frames, drop_after=n)`` makes the next successful login receive
    ``frames`` (closing the socket after the n-th frame when given).
    ``drop_connections()`` cuts every open connection at once.
    """

    def __init__(self, username: str = "crm", secret: str = "s3cret", *,
                 banner: str = BANNER) -> None:
        self.username, self.secret, self.banner = username, secret, banner
        self.logins: queue.Queue[LoginAttempt] = queue.Queue()
        self.actions: queue.Queue[str] = queue.Queue()
        self.answer_pings = True
        self._sessions: queue.Queue[_Session] = queue.Queue()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.write_lock = threading.Lock()
        self._server = _AmiTcpServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> AmiStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self.drop_connections()
        self._server.server_close()

    def __enter__(self) -> AmiStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def queue_session(self, frames: Sequence[str], *, drop_after: int | None = None) -> None:
        self._sessions.put(_Session(list(frames), drop_after))

    def next_session(self) -> _Session | None:
        try:
            return self._sessions.get_nowait()
        except queue.Empty:
            return None

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def push(self, frames: Sequence[str]) -> int:
        """Send ``frames`` to every open connection now (a live PBX producing events);
        returns how many connections got them."""
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with self.write_lock:
                for frame in frames:
                    conn.sendall(wire(frame))
        return len(connections)

    def drop_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the other side

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


# --------------------------------------------------------------------------- recordings


def make_wav(seconds: float = 0.25, rate: int = 8000, tone_hz: float = 440.0) -> bytes:
    """A small valid mono 16-bit PCM WAV with a sine tone (what a call recording is)."""
    frames = bytearray()
    for n in range(int(seconds * rate)):
        sample = int(12000 * math.sin(2 * math.pi * tone_hz * n / rate))
        frames += struct.pack("<h", sample)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MANGO_DOWNLOAD = "/queries/recording/post/"
ZADARMA_LINK = "/v1/pbx/record/request/"



def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=`` range as inclusive (start, end); ``None`` if unsatisfiable."""
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # suffix form: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return None
    return start, end


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


class _RecordingHandler(BaseHTTPRequestHandler):
    server: _RecordingHttpServer

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def do_POST(self) -> None:
        standin = self.server.standin
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        standin.requests.put(SeenRequest("POST", self.path, dict(self.headers), body))
        status = standin._take_failure()
        if status is not None:
            self._reply(status, b"", with_body=True)
            return
        if self.path.split("?", 1)[0].rstrip("/") != MANGO_DOWNLOAD.rstrip("/"):
            self._reply(HTTPStatus.NOT_FOUND, b"", with_body=True)
            return
        form = dict(parse_qsl(body.decode("utf-8")))
        if standin.mango_credentials is not None:
            key, salt = standin.mango_credentials
            expected = hashlib.sha256(f"{key}{form.get('json', '')}{salt}".encode()).hexdigest()
            if form.get("vpbx_api_key") != key or form.get("sign") != expected:
                self._reply(HTTPStatus.UNAUTHORIZED, b"", with_body=True)
                return
        request = json.loads(form.get("json") or "{}")
        recording = standin.mango.get(str(request.get("recording_id")))
        if recording is None or request.get("action") != "download":
            self._reply(HTTPStatus.NOT_FOUND, b"", with_body=True)
            return
        self._reply(HTTPStatus.OK, recording, with_body=True)

    def _zadarma_link(self) -> None:
        standin = self.server.standin
        query = dict(parse_qsl(urlsplit(self.path).query))
        key = (self.headers.get("Authorization") or "").split(":", 1)[0]
        if standin.zadarma_key is not None and key != standin.zadarma_key:
            body = {"status": "error", "message": "Not authorized"}
            self._reply(HTTPStatus.UNAUTHORIZED, json.dumps(body).encode(), with_body=True)
            return
        path = standin.zadarma.get(query.get("call_id", ""))
        body = ({"status": "success", "link": standin.url(path), "lifetime_till": "2030-01-01"}
                if path else {"status": "error", "message": "Record not found"})
        self._reply(HTTPStatus.OK, json.dumps(body).encode(), with_body=True)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass  # keep test output clean

    def _serve(self, *, with_body: bool) -> None:
        standin = self.server.standin
        standin.requests.put(SeenRequest(self.command, self.path, dict(self.headers)))
        status = standin._take_failure()
        if status is not None:
            self._reply(status, b"", with_body=with_body)
            return
        if self.path.split("?", 1)[0].rstrip("/") == ZADARMA_LINK.rstrip("/"):
            self._zadarma_link()
            return
        if standin.token is not None and self.headers.get("Authorization") != (
                f"Bearer {standin.token}"):
            self._reply(HTTPStatus.UNAUTHORIZED, b"", with_body=with_body)
            return
        body = standin.files.get(self.path.split("?", 1)[0])
        if body is None:
            self._reply(HTTPStatus.NOT_FOUND, b"", with_body=with_body)
            return
        self._serve_body(body, with_body=with_body)

    def _serve_body(self, body: bytes, *, with_body: bool) -> None:
        header = self.headers.get("Range")
        if header is None:
            self._reply(HTTPStatus.OK, body, with_body=with_body)
            return
        span = parse_range(header, len(body))
        if span is None:
            self._reply(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", with_body=with_body,
                        extra={"Content-Range": f"bytes */{len(body)}"})
            return
        start, end = span
        self._reply(HTTPStatus.PARTIAL_CONTENT, body[start:end + 1], with_body=with_body,
                    extra={"Content-Range": f"bytes {start}-{end}/{len(body)}"})

    def _reply(self, status: int, body: bytes, *, with_body: bool,
               extra: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        content_type = ("audio/wav" if body[:4] == b"RIFF" else "application/json"
                        if body[:1] == b"{" else "application/octet-stream")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if with_body:
            self.wfile.write(body)


class _RecordingHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, standin: RecordingServer) -> None:
        self.standin = standin
        super().__init__(("127.0.0.1", 0), _RecordingHandler)


class RecordingServer:
    """HTTP server handing out recordings: ``files`` maps URL path -> bytes.

    Supports ``Range`` (206 / 416), ``HEAD``, an optional bearer ``token`` (401 without
    it), and ``fail_next(n, status)`` to answer the next n requests with an error.  Every
    request is put on ``requests`` (a queue of ``SeenRequest``).

    It also plays the two cloud PBX recording APIs: Mango's ``POST
    /queries/recording/post/`` (``mango`` maps recording_id -> bytes; the form's sign is
    checked when ``mango_credentials`` = (key, salt) is set) and Zadarma's ``GET
    /v1/pbx/record/request/?call_id=`` (``zadarma`` maps call_id -> a path in ``files``,
    answered with a link to it; the Authorization key is checked when ``zadarma_key``).
    """

    def __init__(self, files: Mapping[str, bytes] | None = None, *,
                 token: str | None = None) -> None:
        self.files: dict[str, bytes] = dict(files or {})
        self.token = token
        self.mango: dict[str, bytes] = {}
        self.mango_credentials: tuple[str, str] | None = None
        self.zadarma: dict[str, str] = {}
        self.zadarma_key: str | None = None
        self.requests: queue.Queue[SeenRequest] = queue.Queue()
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._server = _RecordingHttpServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fail_next(self, count: int = 1, status: int = HTTPStatus.SERVICE_UNAVAILABLE) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def _take_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def start(self) -> RecordingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RecordingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
