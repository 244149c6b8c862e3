"""Real local servers standing in for the notification providers in tests.

Each listens on 127.0.0.1 on an ephemeral port, is a context manager (or use
start()/stop()), records what it accepted, and lets a test wait for N accepted
messages (a condition variable, no sleeping).  Failure modes are queued: every
``*_next(k)`` call adds k faults, and each incoming request (SMTP: each DATA) takes the
oldest one, so ``fail_next(1); throttle_next(1)`` means "500, then 429, then normal".
"""
from __future__ import annotations

import asyncio
import itertools
import json
import threading
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, NamedTuple, TypeVar, cast
from urllib.parse import parse_qsl, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

HOST = "127.0.0.1"
DEFAULT_WAIT = 5.0
# A hung request is released by stop(); this only bounds it if a test never stops.
HANG_LIMIT = 30.0

T = TypeVar("T")


# ---------------------------------------------------------------------------- shared parts

@dataclass(frozen=True)
class Fault:
    kind: str  # "status", "throttle", "hang", "block", "code", "reject"
    status: int = 0
    retry_after: int = 0
    text: str = ""
    only: str | None = None  # a path ending (e.g. "sendMessage"): other requests pass by


class _FaultQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()

    def add(self, count: int, fault: Fault) -> None:
        with self._lock:
            self._queue.extend([fault] * count)

    def take(self, path: str = "") -> Fault | None:
        with self._lock:
            for fault in self._queue:
                if fault.only is None or path.endswith(fault.only):
                    self._queue.remove(fault)
                    return fault
            return None


class _Recorder(Generic[T]):
    """Accepted messages, and waiting for a number of them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: list[T] = []

    def add(self, item: T) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def items(self) -> list[T]:
        with self._cond:
            return list(self._items)

    def wait_for(self, count: int, timeout: float) -> list[T]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._items) >= count, timeout):
                raise AssertionError(f"expected {count} message(s) within {timeout} s, "
                                     f"got {len(self._items)}")
            return list(self._items)


# -------------------------------------------------------------------------------- SMTP

@dataclass(frozen=True)
class SmtpReceived:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    peer: Any = None  # the client's (host, port): one per SMTP session


class _EphemeralController(Controller):
    """aiosmtpd's Controller cannot listen on port 0: it connects to ``self.port`` to
    check that it started.  Learn the real port from the socket before that check."""

    def _create_server(self) -> Any:
        create = super()._create_server()

        async def bind() -> asyncio.Server:
            server = cast(asyncio.Server, await create)  # loop.create_server gives a Server
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bind()

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # "AUTH without TLS is insecure": true, and irrelevant on loopback.
            warnings.simplefilter("ignore")
            return super().factory()


class SmtpStandin:
    """An SMTP server (aiosmtpd) that keeps what it receives as parsed messages."""

    def __init__(self, *, credentials: tuple[str, str] | None = None) -> None:
        self.host = HOST
        self.port = 0
        self._credentials = credentials
        self._faults = _FaultQueue()
        self._received: _Recorder[SmtpReceived] = _Recorder()
        self._refused: dict[str, str] = {}
        self._wake: asyncio.Event | None = None
        self._controller: _EphemeralController | None = None

    # lifecycle
    def start(self) -> SmtpStandin:
        self._wake = asyncio.Event()  # not bound to a loop until first awaited
        self._controller = _EphemeralController(
            self, hostname=HOST, port=0, server_hostname="smtp.standin",
            authenticator=self._authenticate if self._credentials else None,
            auth_required=self._credentials is not None, auth_require_tls=False)
        self._controller.start()
        self.port = self._controller.port
        return self

    def stop(self) -> None:
        if self._controller is None:
            return
        wake = self._wake
        if wake is not None:
            self._controller.loop.call_soon_threadsafe(wake.set)
        self._controller.stop()
        self._controller = None

    def __enter__(self) -> SmtpStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # failure modes
    def reject_next(self, count: int = 1, code: int = 451,
                    text: str = "4.3.0 Temporary failure, try again later") -> None:
        """Answer the next ``count`` DATA commands with ``code`` (451: try later)."""
        self._faults.add(count, Fault("reject", status=code, text=text))

    def hang_next(self, count: int = 1) -> None:
        """Never answer the next ``count`` DATA commands (the client times out)."""
        self._faults.add(count, Fault("hang"))

    def refuse_recipient(self, address: str,
                         reply: str = "550 5.1.1 No such user here") -> None:
        self._refused[address.lower()] = reply

    # results
    @property
    def received(self) -> list[SmtpReceived]:
        return self._received.items()

    @property
    def messages(self) -> list[EmailMessage]:
        return [item.message for item in self._received.items()]

    def wait_for_messages(self, count: int, timeout: float = DEFAULT_WAIT) -> list[EmailMessage]:
        return [item.message for item in self.wait_for_received(count, timeout)]

    def wait_for_received(self, count: int,
                          timeout: float = DEFAULT_WAIT) -> list[SmtpReceived]:
        """Like wait_for_messages, with the envelope and the raw bytes."""
        return self._received.wait_for(count, timeout)

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        refusal = self._refused.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        fault = self._faults.take()
        if fault is not None and fault.kind == "hang":
            assert self._wake is not None
            try:
                await asyncio.wait_for(self._wake.wait(), HANG_LIMIT)
            except TimeoutError:
                pass
            return "421 4.3.2 Shutting down"
        if fault is not None:
            return f"{fault.status} {fault.text}"
        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=email_policy.default)
        self._received.add(SmtpReceived(envelope.mail_from, list(envelope.rcpt_tos), raw,
                                        message, session.peer))
        return "250 OK: queued"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        assert self._credentials is not None
        expected = LoginPassword(*(part.encode() for part in self._credentials))
        accepted = isinstance(auth_data, LoginPassword) and auth_data == expected
        # handled=False: let aiosmtpd send the "535 authentication failed" reply itself.
        return AuthResult(success=accepted, handled=False, auth_data=auth_data)


# -------------------------------------------------------------------------- HTTP base

class Request(NamedTuple):
    method: str
    path: str
    params: dict[str, Any]  # query string, then a JSON or form body on top


class Reply(NamedTuple):
    status: int
    body: Any  # JSON-able, or str for a non-JSON answer
    headers: dict[str, str] = {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for a hung handler


class _HttpStandin:
    """A ThreadingHTTPServer in a thread; subclasses answer requests in ``_handle``."""

    def __init__(self) -> None:
        self._faults = _FaultQueue()
        self._released = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._requests: list[Request] = []
        self._requests_lock = threading.Lock()

    # lifecycle
    def start(self) -> Any:
        self._released.clear()
        self._server = _Server((HOST, 0), _handler_for(self._dispatch))
        # A short poll interval only makes stop() quick; requests are served at once.
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._released.set()
        self._on_stop()
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the stand-in first"
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[Request]:
        """Every request that arrived, answered or not (a hung one too)."""
        with self._requests_lock:
            return list(self._requests)

    # failure modes common to HTTP providers; ``only`` limits one to requests whose path
    # ends so (a Telegram test may fail sendMessage while getUpdates keeps working)
    def fail_next(self, count: int = 1, status: int = 500, only: str | None = None) -> None:
        self._faults.add(count, Fault("status", status=status, only=only))

    def throttle_next(self, count: int = 1, retry_after: int = 1,
                      only: str | None = None) -> None:
        self._faults.add(count, Fault("throttle", status=429, retry_after=retry_after,
                                      only=only))

    def hang_next(self, count: int = 1, only: str | None = None) -> None:
        """Hold the next ``count`` requests without answering until stop()."""
        self._faults.add(count, Fault("hang", only=only))

    # for subclasses
    def _handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def _fault_reply(self, fault: Fault, request: Request) -> Reply:
        raise NotImplementedError

    def _on_stop(self) -> None:
        """Wake any handler waiting on the subclass's own conditions."""

    def _dispatch(self, request: Request) -> Reply | None:
        with self._requests_lock:
            self._requests.append(request)
        fault = self._faults.take(request.path)
        if fault is None:
            return self._handle(request)
        if fault.kind == "hang":
            self._released.wait(HANG_LIMIT)
            return None
        return self._fault_reply(fault, request)


def _handler_for(dispatch: Callable[[Request], Reply | None]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            reply = dispatch(self._request())
            if reply is None:
                self.close_connection = True
                return
            try:
                self._write(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timed out) first

        do_POST = do_GET  # noqa: N815

        def _request(self) -> Request:
            parts = urlsplit(self.path)
            params: dict[str, Any] = dict(parse_qsl(parts.query))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if "json" in (self.headers.get("Content-Type") or ""):
                params.update(json.loads(body or b"{}"))
            elif body:
                params.update(parse_qsl(body.decode("utf-8")))
            return Request(self.command, parts.path, params)

        def _write(self, reply: Reply) -> None:
            is_text = isinstance(reply.body, str)
            data = (reply.body if is_text else json.dumps(reply.body)).encode("utf-8")
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/plain; charset=utf-8" if is_text
                             else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep test output quiet

    return Handler


# ---------------------------------------------------------------------------- Telegram

@dataclass(frozen=True)
class TelegramSent:
    chat_id: int | str
    text: str
    message_id: int
    params: dict[str, Any] = field(default_factory=dict)


class TelegramStandin(_HttpStandin):
    """Bot API subset: ``sendMessage`` and ``getUpdates`` at {url}/bot{token}/<method>."""

    def __init__(self, token: str = "123456:standin-token") -> None:
        super().__init__()
        self.token = token
        self._sent: _Recorder[TelegramSent] = _Recorder()
        self._message_ids = itertools.count(1)
        self._update_ids = itertools.count(500_000)
        self._updates: list[dict[str, Any]] = []
        self._updates_cond = threading.Condition()

    def block_next(self, count: int = 1, only: str | None = None) -> None:
        """Answer 403 "bot was blocked by the user" to the next ``count`` requests."""
        self._faults.add(count, Fault("block", status=403, only=only))

    def push_message(self, chat_id: int, text: str, *, chat_type: str = "private",
                     is_bot: bool = False) -> dict[str, Any]:
        """Queue an update as if a user wrote ``text`` to the bot."""
        update = {"update_id": next(self._update_ids), "message": {
            "message_id": next(self._message_ids), "date": 1_700_000_000, "text": text,
            "chat": {"id": chat_id, "type": chat_type},
            "from": {"id": chat_id, "is_bot": is_bot, "first_name": "Test"}}}
        with self._updates_cond:
            self._updates.append(update)
            self._updates_cond.notify_all()
        return update

    @property
    def messages(self) -> list[TelegramSent]:
        return self._sent.items()

    def wait_for_messages(self, count: int, timeout: float = DEFAULT_WAIT) -> list[TelegramSent]:
        return self._sent.wait_for(count, timeout)

    def _handle(self, request: Request) -> Reply:
        prefix, _, method = request.path.rpartition("/")
        if prefix != f"/bot{self.token}":
            return _bot_error(401 if prefix.startswith("/bot") else 404,
                              "Unauthorized" if prefix.startswith("/bot") else "Not Found")
        if method == "sendMessage":
            return self._send_message(request.params)
        if method == "getUpdates":
            return self._get_updates(request.params)
        return _bot_error(404, "Not Found: method not found")

    def _send_message(self, params: dict[str, Any]) -> Reply:
        chat_id, text = _chat_id(params.get("chat_id")), params.get("text") or ""
        if chat_id is None:
            return _bot_error(400, "Bad Request: chat not found")
        if not text.strip():
            return _bot_error(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > 4096:
            return _bot_error(400, "Bad Request: message is too long")
        sent = TelegramSent(chat_id, text, next(self._message_ids), dict(params))
        self._sent.add(sent)
        return Reply(200, {"ok": True, "result": {
            "message_id": sent.message_id, "date": 1_700_000_000, "text": text,
            "chat": {"id": chat_id, "type": "private"}}})

    def _get_updates(self, params: dict[str, Any]) -> Reply:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        poll = min(float(params.get("timeout") or 0), HANG_LIMIT)
        with self._updates_cond:
            # Like Telegram: asking from ``offset`` confirms (forgets) everything before it.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            self._updates_cond.wait_for(lambda: self._updates or self._released.is_set(),
                                        poll)
            return Reply(200, {"ok": True, "result": self._updates[:limit]})

    def _on_stop(self) -> None:
        with self._updates_cond:
            self._updates_cond.notify_all()

    def _fault_reply(self, fault: Fault, request: Request) -> Reply:
        if fault.kind == "throttle":
            return _bot_error(429, f"Too Many Requests: retry after {fault.retry_after}",
                              parameters={"retry_after": fault.retry_after})
        if fault.kind == "block":
            return _bot_error(403, "Forbidden: bot was blocked by the user")
        return _bot_error(fault.status, HTTPStatus(fault.status).phrase)


def _bot_error(code: int, description: str, **extra: Any) -> Reply:
    return Reply(code, {"ok": False, "error_code": code, "description": description,
                        **extra})


def _chat_id(value: Any) -> int | str | None:
    text = str(value if value is not None else "")
    if text.lstrip("-").isdigit():
        return int(text)
    return text if text.startswith("@") and len(text) > 1 else None


# --------------------------------------------------------------------------------- SMS

@dataclass(frozen=True)
class SmsSent:
    to: str
    text: str
    sms_id: str
    params: dict[str, Any] = field(default_factory=dict)


# SMS.ru reports these per number; the rest concern the whole request.
_PER_NUMBER_CODES = {202, 207, 209, 230, 231, 232, 233}


class SmsStandin(_HttpStandin):
    """SMS.ru-style ``/sms/send`` (GET or POST; api_id, to, msg, json=1)."""

    def __init__(self, api_id: str = "standin-api-id") -> None:
        super().__init__()
        self.api_id = api_id
        self._sent: _Recorder[SmsSent] = _Recorder()
        self._ids = itertools.count(1)

    def error_next(self, count: int = 1, status_code: int = 202) -> None:
        """Answer the next ``count`` requests with an SMS.ru status code (HTTP 200)."""
        self._faults.add(count, Fault("code", status=status_code))

    @property
    def messages(self) -> list[SmsSent]:
        return self._sent.items()

    def wait_for_messages(self, count: int, timeout: float = DEFAULT_WAIT) -> list[SmsSent]:
        return self._sent.wait_for(count, timeout)

    def _handle(self, request: Request) -> Reply:
        params = request.params
        if request.path != "/sms/send":
            return Reply(404, "Not Found")
        if params.get("api_id") != self.api_id:
            return _sms_error(200, "Неправильный api_id")
        if not (params.get("msg") or "").strip():
            return _sms_error(203, "Нет текста сообщения")
        per_number = {phone: self._accept(phone, params) for phone in _phones(params)}
        return Reply(200, {"status": "OK", "status_code": 100, "sms": per_number,
                           "balance": 100.0})

    def _accept(self, phone: str, params: dict[str, Any]) -> dict[str, Any]:
        if not (phone.isdigit() and 10 <= len(phone) <= 15):
            return {"status": "ERROR", "status_code": 202,
                    "status_text": "Неправильно указан номер телефона получателя"}
        sent = SmsSent(phone, params["msg"], f"{next(self._ids):06d}-{phone[-4:]}",
                       dict(params))
        self._sent.add(sent)
        return {"status": "OK", "status_code": 100, "sms_id": sent.sms_id}

    def _fault_reply(self, fault: Fault, request: Request) -> Reply:
        if fault.kind == "throttle":
            return Reply(429, "Too Many Requests", {"Retry-After": str(fault.retry_after)})
        if fault.kind == "code" and fault.status in _PER_NUMBER_CODES:
            error = {"status": "ERROR", "status_code": fault.status,
                     "status_text": f"standin error {fault.status}"}
            return Reply(200, {"status": "OK", "status_code": 100,
                               "sms": {phone: error for phone in _phones(request.params)}})
        if fault.kind == "code":
            return _sms_error(fault.status, f"standin error {fault.status}")
        return Reply(fault.status, HTTPStatus(fault.status).phrase)


def _sms_error(code: int, text: str) -> Reply:
    return Reply(200, {"status": "ERROR", "status_code": code, "status_text": text})


def _phones(params: dict[str, Any]) -> list[str]:
    return [p.strip() for p in str(params.get("to") or "").split(",") if p.strip()]


# ------------------------------------------------------------------- the whole CRM with them

class CommsStack:
    """The whole CRM as processes (``tests.support.stack.Stack``) with every provider of
    telephony and notifications played by the stand-ins above and in ``pbx_standins``: an
    AMI server, a recordings/cloud-PBX HTTP server, SMTP, Telegram and SMS; and the online
    payment provider (``payment_provider``).

    Booting a stack costs seconds, so the telephony and notifications end-to-end and
    browser modules share one per pytest process: ``comms_stack(pytestconfig)``.
    """

    MANGO = ("vpbx-e2e-key", "vpbx-e2e-salt")
    ZADARMA = ("zd-e2e-key", "zd-e2e-secret")
    AMI = ("crm", "ami-e2e-secret")

    def __init__(self) -> None:
        import tempfile
        from pathlib import Path

        from tests.support.pbx_standins import AmiStandIn, RecordingServer
        from tests.support.stack import Stack

        self.ami = AmiStandIn(*self.AMI).start()
        self.pbx = RecordingServer().start()
        self.pbx.mango_credentials = self.MANGO
        self.pbx.zadarma_key = self.ZADARMA[0]
        self.smtp = SmtpStandin().start()
        self.telegram = TelegramStandin().start()
        self.sms = SmsStandin().start()
        from tests.support.payment_provider import PaymentProviderStandIn

        self.provider = PaymentProviderStandIn()
        self.recordings = Path(tempfile.mkdtemp(prefix="crm-e2e-recordings-"))
        self.stack = Stack()
        self.stack.env.update({
            "RECORDINGS_DIR": str(self.recordings),
            "AMI_HOST": self.ami.host, "AMI_PORT": str(self.ami.port),
            "AMI_USERNAME": self.AMI[0], "AMI_SECRET": self.AMI[1],
            "AMI_RECONNECT_SECONDS": "0.2", "AMI_LEASE_RETRY_SECONDS": "0.5",
            "AMI_RECORDINGS_URL": self.pbx.url("/monitor"),
            "MANGO_API_KEY": self.MANGO[0], "MANGO_API_SALT": self.MANGO[1],
            "MANGO_API_URL": self.pbx.url(""),
            "ZADARMA_KEY": self.ZADARMA[0], "ZADARMA_SECRET": self.ZADARMA[1],
            "ZADARMA_API_URL": self.pbx.url(""),
            "RECORDING_ALLOWED_HOSTS": "127.0.0.1", "RECORDING_POLL_SECONDS": "0.5",
            "RECORDING_RETRY_SECONDS": "0.2", "ATTRIBUTION_RETRY_SECONDS": "0.5",
            "SMTP_HOST": self.smtp.host, "SMTP_PORT": str(self.smtp.port),
            "SMTP_FROM": "CRM <crm@crm.test>", "SMTP_TIMEOUT": "4",
            "TELEGRAM_BOT_TOKEN": self.telegram.token, "TELEGRAM_API_URL": self.telegram.url,
            "TELEGRAM_BOT_NAME": "crm_e2e_bot", "TELEGRAM_POLL_TIMEOUT": "1",
            "TELEGRAM_RETRY_SECONDS": "0.3",
            "SMS_API_ID": self.sms.api_id, "SMS_API_URL": self.sms.url,
            "HTTP_READ_TIMEOUT": "2",
            "NOTIFY_POLL_SECONDS": "0.2", "NOTIFY_RETRY_BASE_SECONDS": "0.2",
            "NOTIFY_RETRY_MAX_SECONDS": "1", "NOTIFY_MAX_ATTEMPTS": "3",
            "NOTIFY_SEND_LEASE_SECONDS": "6", "PUBLIC_URL": self.stack.url,
            "ONLINE_PAYMENTS_API_URL": self.provider.url, "ONLINE_PAYMENTS_SHOP_ID": "e2e-shop",
            "ONLINE_PAYMENTS_SECRET_KEY": "e2e-secret",
        })

    def up(self) -> CommsStack:
        self.stack.up()
        return self

    def down(self) -> None:
        import shutil

        try:
            self.stack.down()
        finally:
            for server in (self.ami, self.pbx, self.smtp, self.telegram, self.sms):
                server.stop()
            self.provider.close()
            shutil.rmtree(self.recordings, ignore_errors=True)


_COMMS: list[CommsStack] = []


def comms_stack(pytestconfig: Any) -> CommsStack:
    """The process's one ``CommsStack``, started on first use and stopped when the pytest
    session ends."""
    if not _COMMS:
        made = CommsStack()
        pytestconfig.add_cleanup(made.down)
        _COMMS.append(made.up())
    return _COMMS[0]
