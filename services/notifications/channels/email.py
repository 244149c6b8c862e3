"""E-mail channel over SMTP (smtplib; green under eventlet's monkey-patching)."""
from __future__ import annotations

import hashlib
import smtplib
import ssl
import time
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

from services.kit import clock
from services.notifications.channels.result import DeliveryResult

# 7-bit transport: the body goes as base64/quoted-printable and headers as RFC 2047
# words, so any relay accepts it, 8BITMIME/SMTPUTF8 or not.
_POLICY = SMTP_POLICY.clone(cte_type="7bit")


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
        message = self.build_message(to, subject, text, idempotency_key=idempotency_key)
        try:
            self._deliver(message)
        except smtplib.SMTPRecipientsRefused as exc:
            return _recipient_refused(exc)
        except smtplib.SMTPResponseException as exc:
            return _smtp_reply_failure(exc)
        except (smtplib.SMTPException, OSError) as exc:
            # Connection refused or dropped, timeout (TimeoutError is an OSError), TLS.
            return DeliveryResult.retry_later(f"{type(exc).__name__}: {exc}")
        return DeliveryResult.accepted(str(message["Message-ID"]))

    def message_id_for(self, idempotency_key: str) -> str:
        """The Message-ID the message with this key has (and will have when re-sent)."""
        return message_id(idempotency_key, self._sender.domain)

    def build_message(self, to: Address | str, subject: str, text: str, *,
                      idempotency_key: str) -> EmailMessage:
        if isinstance(to, str):
            parsed = _parse_address(to)
            if parsed is None:
                raise ValueError(f"{to!r} is not an e-mail address")
            to = parsed
        message = EmailMessage(policy=_POLICY)
        message["From"] = self._sender
        message["To"] = to
        # Collapsing whitespace drops line breaks, which headers may not contain (and
        # which would be a header injection if a template let user input through).
        message["Subject"] = " ".join(subject.split())
        message["Date"] = format_datetime(clock.now())
        message["Message-ID"] = message_id(idempotency_key, self._sender.domain)
        # RFC 3834: stops auto-responders (vacation replies) from answering notifications.
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text, charset="utf-8")
        return message

    def _deliver(self, message: EmailMessage) -> None:
        smtp, reused = self._session()
        try:
            smtp.send_message(message)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            _quit_quietly(smtp)
            if not reused:
                raise
            # The relay closed a kept session while it waited.  Sending again on a fresh
            # one is what a retry would do, with the same Message-ID.
            smtp, _ = self._session(fresh=True)
            try:
                smtp.send_message(message)
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
