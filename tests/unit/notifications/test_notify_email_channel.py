"""EmailChannel against a real local SMTP server (aiosmtpd)."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from services.notifications.channels import EmailChannel
from services.notifications.channels.email import message_id
from tests.support.notify_standins import SmtpStandin

SENDER = "CRM Уведомления <noreply@crm.example>"


@pytest.fixture
def smtp() -> Iterator[SmtpStandin]:
    with SmtpStandin() as standin:
        yield standin


def channel_for(standin: SmtpStandin, **overrides: Any) -> EmailChannel:
    settings: dict[str, Any] = {"host": standin.host, "port": standin.port,
                                "sender": SENDER, "timeout": 2.0, **overrides}
    return EmailChannel(**settings)


def free_port() -> int:
    """A port nobody listens on (bound then released), so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cyrillic_subject_and_body_arrive_intact(smtp: SmtpStandin) -> None:
    text = "Здравствуйте, Иван!\nСделка «Поставка №7» закрыта: 1 500 000 ₽."
    result = channel_for(smtp).send("Иван Петров <ivan@client.example>",
                                    "Сделка закрыта — поздравляем", text,
                                    idempotency_key="deal-7-closed")
    assert result.ok
    [message] = smtp.wait_for_messages(1)
    assert message["Subject"] == "Сделка закрыта — поздравляем"
    assert message["To"].addresses[0].display_name == "Иван Петров"
    assert message["From"].addresses[0].display_name == "CRM Уведомления"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().replace("\r\n", "\n").rstrip("\n") == text
    assert message["Auto-Submitted"] == "auto-generated"


def test_message_travels_as_7bit_ascii(smtp: SmtpStandin) -> None:
    channel_for(smtp).send("a@client.example", "Тема", "Текст", idempotency_key="k")
    [received] = smtp.wait_for_received(1)
    assert received.raw.isascii()  # no relay needs 8BITMIME or SMTPUTF8
    assert b"Subject: =?utf-8?" in received.raw


def test_message_id_repeats_for_the_same_idempotency_key(smtp: SmtpStandin) -> None:
    channel = channel_for(smtp)
    first = channel.send("a@client.example", "s", "t", idempotency_key="notif-1")
    again = channel.send("a@client.example", "s", "t", idempotency_key="notif-1")
    other = channel.send("a@client.example", "s", "t", idempotency_key="notif-2")
    ids = [m["Message-ID"] for m in smtp.wait_for_messages(3)]
    assert ids[0] == ids[1] == first.provider_id == again.provider_id
    assert ids[2] == other.provider_id != ids[0]
    assert ids[0] == message_id("notif-1", "crm.example")


def test_temporary_rejection_is_retryable_then_succeeds(smtp: SmtpStandin) -> None:
    smtp.reject_next(1, code=451)
    channel = channel_for(smtp)
    failed = channel.send("a@client.example", "s", "t", idempotency_key="k")
    assert failed.retryable and "451" in failed.reason
    assert channel.send("a@client.example", "s", "t", idempotency_key="k").ok
    assert len(smtp.wait_for_messages(1)) == 1


def test_permanent_data_rejection(smtp: SmtpStandin) -> None:
    smtp.reject_next(1, code=554, text="5.7.1 Message rejected as spam")
    result = channel_for(smtp).send("a@client.example", "s", "t", idempotency_key="k")
    assert result.permanent and "554" in result.reason


def test_refused_recipient_is_permanent(smtp: SmtpStandin) -> None:
    smtp.refuse_recipient("gone@client.example")
    result = channel_for(smtp).send("gone@client.example", "s", "t", idempotency_key="k")
    assert result.permanent and "550" in result.reason
    assert smtp.received == []


@pytest.mark.parametrize("recipient", [
    "not-an-address", "a@", "@client.example", "иван@почта.рф",
    "a@client.example\r\nBcc: spy@evil.example", "",
])
def test_malformed_recipient_is_permanent(smtp: SmtpStandin, recipient: str) -> None:
    result = channel_for(smtp).send(recipient, "s", "t", idempotency_key="k")
    assert result.permanent and "bad recipient" in result.reason


def test_international_domain_goes_as_punycode(smtp: SmtpStandin) -> None:
    assert channel_for(smtp).send("ivan@почта.рф", "s", "t", idempotency_key="k").ok
    smtp.wait_for_messages(1)
    assert smtp.received[0].rcpt_tos == ["ivan@xn--80a1acny.xn--p1ai"]


def test_line_breaks_in_subject_cannot_inject_headers(smtp: SmtpStandin) -> None:
    channel_for(smtp).send("a@client.example", "Привет\r\nBcc: spy@evil.example", "t",
                           idempotency_key="k")
    [message] = smtp.wait_for_messages(1)
    assert message["Bcc"] is None
    assert message["Subject"] == "Привет Bcc: spy@evil.example"
    assert smtp.received[0].rcpt_tos == ["a@client.example"]


def test_timeout_is_retryable(smtp: SmtpStandin) -> None:
    smtp.hang_next(1)
    result = channel_for(smtp, timeout=0.3).send("a@client.example", "s", "t",
                                                 idempotency_key="k")
    assert result.retryable and "timed out" in result.reason


def test_unreachable_server_is_retryable() -> None:
    channel = EmailChannel(host="127.0.0.1", port=free_port(), sender=SENDER, timeout=1.0)
    result = channel.send("a@client.example", "s", "t", idempotency_key="k")
    assert result.retryable and "ConnectionRefused" in result.reason


def test_login_with_credentials() -> None:
    with SmtpStandin(credentials=("crm", "s3cret")) as smtp:
        good = channel_for(smtp, user="crm", password="s3cret")
        assert good.send("a@client.example", "s", "t", idempotency_key="k").ok
        bad = channel_for(smtp, user="crm", password="wrong")
        result = bad.send("a@client.example", "s", "t", idempotency_key="k")
        # Our credentials, not the recipient: retry so a config fix rescues the message.
        assert result.retryable and "535" in result.reason
        assert len(smtp.wait_for_messages(1)) == 1


def test_messages_share_one_smtp_session(smtp: SmtpStandin) -> None:
    channel = channel_for(smtp)
    for n in range(3):
        assert channel.send("a@client.example", "s", "t", idempotency_key=f"k{n}").ok
    received = smtp.wait_for_received(3)
    assert len({r.peer for r in received}) == 1
    channel.close()


def test_a_session_idle_too_long_is_not_reused(smtp: SmtpStandin) -> None:
    channel = channel_for(smtp, idle_seconds=0)
    for n in range(2):
        assert channel.send("a@client.example", "s", "t", idempotency_key=f"k{n}").ok
    assert len({r.peer for r in smtp.wait_for_received(2)}) == 2


def test_a_kept_session_the_server_dropped_is_replaced_and_the_message_sent_once(
        smtp: SmtpStandin) -> None:
    channel = channel_for(smtp)
    assert channel.send("a@client.example", "s", "t", idempotency_key="first").ok
    [(_, kept)] = channel._idle
    kept.sock.shutdown(socket.SHUT_RDWR)  # as a relay that timed the idle client out
    result = channel.send("a@client.example", "s", "t", idempotency_key="second")
    assert result.ok
    first, second = smtp.wait_for_received(2)
    assert first.peer != second.peer
    assert len(smtp.received) == 2


def test_after_a_refusal_the_session_is_not_reused(smtp: SmtpStandin) -> None:
    channel = channel_for(smtp)
    smtp.reject_next(1, code=550, text="5.6.0 rejected")
    assert not channel.send("a@client.example", "s", "t", idempotency_key="k1").ok
    assert channel._idle == []
    assert channel.send("a@client.example", "s", "t", idempotency_key="k2").ok


def test_sender_must_be_an_address() -> None:
    with pytest.raises(ValueError):
        EmailChannel(host="localhost", sender="nobody")
