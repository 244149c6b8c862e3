"""E-mail channel over SMTP (smtplib; green under eventlet's monkey-patching)."""
from __future__ import annotations

import base64
import hashlib
import smtplib
import ssl
import time
from email.header import Header
from email.headerregistry import Address
from email.utils import format_datetime, formataddr, parseaddr

from services.kit import clock
from services.notifications.channels.result import DeliveryResult

# 7-bit transport: the body goes as base64 (plain 7bit when it is short-lined ASCII) and
# headers as RFC 2047 words, so any relay accepts it, 8BITMIME/SMTPUTF8 or not.  The
# message is written from a prepared template rather than through ``email.message``: its
# header parsing and flattening were a fifth of the process's time at hundreds of
# messages a second.
_TAIL = ("Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=\"utf-8\"\r\n")


class EmailChannel:
    name = "email"

    def __init__(self, *, host: str, sender: str, port: int = 25, user: str | None = None,
                 password: str | None = None, starttls: bool = False,
                 timeout: float = 10.0, local_hostname: str | None = None,
                 pool_size: int = 10, idle_seconds: float = 30.0) -> None:
        parsed = _parse_address(sender)
        if parsed is None:
            raise ValueError(f"sender {sender!r} is not an e-mail address")
        self._sender = parsed
        self._from_line = f"From: {_address(parsed)}\r\n"
        self._host, self._port = host, port
        self._user, self._password = user, password
        self._starttls = starttls
        self._timeout = timeout  # smtplib applies it to the connect and to every reply
        self._local_hostname = local_hostname
        # Open sessions kept between messages: connecting, TLS, EHLO, AUTH and QUIT cost
        # more round trips than the message itself.  One message at a time per session;
        # a session idle longer than ``idle_seconds`` is closed rather than risked (relays
        # drop idle clients after a minute or more).
        self._pool_size = pool_size
        self._idle_seconds = idle_seconds
        self._idle: list[tuple[float, smtplib.SMTP]] = []

    def send(self, recipient: str, subject: str, text: str, *,
             idempotency_key: str) -> DeliveryResult:
        to = _parse_address(recipient)
        if to is None:
            return DeliveryResult.rejected(f"bad recipient: {recipient!r}")
        mid = message_id(idempotency_key, self._sender.domain)
        raw = self.render(to, subject, text, mid)
        try:
            self._deliver(to.addr_spec, raw)
        except smtplib.SMTPRecipientsRefused as exc:
            return _recipient_refused(exc)
        except smtplib.SMTPResponseException as exc:
            return _smtp_reply_failure(exc)
        except (smtplib.SMTPException, OSError) as exc:
            # Connection refused or dropped, timeout (TimeoutError is an OSError), TLS.
            return DeliveryResult.retry_later(f"{type(exc).__name__}: {exc}")
        return DeliveryResult.accepted(mid)

    def message_id_for(self, idempotency_key: str) -> str:
        """The Message-ID the message with this key has (and will have when re-sent)."""
        return message_id(idempotency_key, self._sender.domain)

    def render(self, to: Address, subject: str, text: str, mid: str) -> bytes:
        """The whole message, 7-bit, CRLF line ends (what goes after DATA)."""
        # Collapsing whitespace drops line breaks, which headers may not contain (and
        # which would be a header injection if a template let user input through).
        head = " ".join(subject.split())
        lines = text.splitlines()
        body = "\r\n".join(lines) + "\r\n"
        if body.isascii() and all(len(line) <= 78 for line in lines):
            encoding, payload = "7bit", body
        else:
            encoding = "base64"
            payload = base64.encodebytes(body.encode("utf-8")).decode("ascii").replace(
                "\n", "\r\n")
        return "".join((
            self._from_line, "To: ", _address(to), "\r\n",
            "Subject: ", _words(head, "Subject"), "\r\n",
            "Date: ", format_datetime(clock.now()), "\r\n",
            "Message-ID: ", mid, "\r\n",
            # RFC 3834: stops auto-responders (vacation replies) answering notifications.
            _TAIL, "Content-Transfer-Encoding: ", encoding, "\r\n\r\n", payload,
        )).encode("ascii")

    def _deliver(self, to: str, raw: bytes) -> None:
        smtp, reused = self._session()
        try:
            smtp.sendmail(self._sender.addr_spec, [to], raw)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            _quit_quietly(smtp)
            if not reused:
                raise
            # The relay closed a kept session while it waited.  Sending again on a fresh
            # one is what a retry would do, with the same Message-ID.
            smtp, _ = self._session(fresh=True)
            try:
                smtp.sendmail(self._sender.addr_spec, [to], raw)
            except BaseException:
                _quit_quietly(smtp)
                raise
        except BaseException:
            # After a refusal or an I/O error the session's state is unknown: not reused.
            _quit_quietly(smtp)
            raise
        self._release(smtp)

    def _session(self, fresh: bool = False) -> tuple[smtplib.SMTP, bool]:
        """A kept session (and True), or a new one, connected and logged in."""
        now = time.monotonic()
        while self._idle and not fresh:
            since, smtp = self._idle.pop()
            if now - since < self._idle_seconds:
                return smtp, True
            _quit_quietly(smtp)
        smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout,
                            local_hostname=self._local_hostname)
        try:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._user:
                smtp.login(self._user, self._password or "")
        except BaseException:
            _quit_quietly(smtp)
            raise
        return smtp, False

    def _release(self, smtp: smtplib.SMTP) -> None:
        if len(self._idle) < self._pool_size:
            self._idle.append((time.monotonic(), smtp))
        else:
            _quit_quietly(smtp)

    def close(self) -> None:
        """QUIT every kept session (the service is stopping)."""
        while self._idle:
            _quit_quietly(self._idle.pop()[1])


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    # Not ``with SMTP()``: its exit raises when QUIT gets an odd reply, which would turn
    # an accepted message into a failure and a duplicate on retry.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def message_id(idempotency_key: str, domain: str) -> str:
    """The same key gives the same Message-ID, so a repeated send is recognisable (mail
    clients and dedup filters treat it as the same message).  Hashed because a key may
    hold characters a Message-ID may not."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def _words(text: str, name: str) -> str:
    """An unstructured header value in 7 bits: as it is when ASCII, else RFC 2047 words
    folded to the line length."""
    if text.isascii():
        return text
    return Header(text, "utf-8", header_name=name).encode(linesep="\r\n")


def _address(address: Address) -> str:
    """``Name <a@b>`` in 7 bits (a non-ASCII name as RFC 2047 words, quoted if it must)."""
    return formataddr((address.display_name, address.addr_spec), charset="utf-8")


def _parse_address(text: str) -> Address | None:
    """An address ("a@b.ru" or "Name <a@b.ru>"); the domain goes IDNA ("почта.рф").
    None for anything else, including non-ASCII mailbox names (they need SMTPUTF8,
    which most relays lack)."""
    if "\r" in text or "\n" in text:
        return None
    name, address = parseaddr(text)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or not local.isascii() or " " in address:
        return None
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return Address(display_name=name, username=local, domain=domain)


def _recipient_refused(exc: smtplib.SMTPRecipientsRefused) -> DeliveryResult:
    code, reply = next(iter(exc.recipients.values()), (0, b""))
    reason = f"recipient refused: {code} {_text(reply)}"
    return DeliveryResult.rejected(reason) if code >= 500 else DeliveryResult.retry_later(reason)


def _smtp_reply_failure(exc: smtplib.SMTPResponseException) -> DeliveryResult:
    reason = f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"
    # A refused login, sender or greeting is about our account or the relay, never this
    # recipient: retry, so fixing the configuration rescues the pending messages.
    ours = (smtplib.SMTPAuthenticationError, smtplib.SMTPSenderRefused,
            smtplib.SMTPConnectError, smtplib.SMTPHeloError)
    if exc.smtp_code >= 500 and not isinstance(exc, ours):
        return DeliveryResult.rejected(reason)
    return DeliveryResult.retry_later(reason)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
