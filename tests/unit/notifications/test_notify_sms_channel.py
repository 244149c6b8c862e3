"""SmsChannel against a local SMS.ru-style stand-in."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from services.notifications.channels import SmsChannel
from services.notifications.channels.sms import classify_code, normalise_phone
from tests.support.notify_standins import SmsStandin

PHONE = "+7 (916) 123-45-67"


@pytest.fixture
def sms() -> Iterator[SmsStandin]:
    with SmsStandin() as standin:
        yield standin


def channel_for(standin: SmsStandin, **overrides: Any) -> SmsChannel:
    settings: dict[str, Any] = {"base_url": standin.url, "connect_timeout": 1.0,
                                "read_timeout": 2.0, **overrides}
    return SmsChannel(standin.api_id, **settings)


def send(channel: SmsChannel, recipient: str = PHONE) -> Any:
    return channel.send(recipient, "Тема не уходит", "Ваш код: 4821",
                        idempotency_key="otp-1")


def test_send_normalises_the_number_and_sends_text_only(sms: SmsStandin) -> None:
    result = send(channel_for(sms, sender="CRM"))
    [sent] = sms.wait_for_messages(1)
    assert (sent.to, sent.text) == ("79161234567", "Ваш код: 4821")
    assert sent.params["json"] == "1" and sent.params["from"] == "CRM"
    assert result.ok and result.provider_id == sent.sms_id


def test_server_error_is_retryable_then_succeeds(sms: SmsStandin) -> None:
    sms.fail_next(1, status=503)
    channel = channel_for(sms)
    failed = send(channel)
    assert failed.retryable and "503" in failed.reason
    assert send(channel).ok
    assert len(sms.wait_for_messages(1)) == 1


def test_too_many_requests_carries_retry_after(sms: SmsStandin) -> None:
    sms.throttle_next(1, retry_after=9)
    result = send(channel_for(sms))
    assert result.retryable and result.retry_after == 9


def test_timeout_is_retryable(sms: SmsStandin) -> None:
    sms.hang_next(1)
    result = send(channel_for(sms, read_timeout=0.3))
    assert result.retryable and result.reason.startswith("timeout")


@pytest.mark.parametrize(("code", "permanent", "retry_after"), [
    (202, True, None),    # invalid number (reported per number)
    (207, True, None),    # no route
    (220, False, None),   # service temporarily unavailable (whole request)
    (231, False, 60.0),   # per-minute limit for this number
    (201, False, None),   # out of money: an operator can top up before retries end
])
def test_provider_status_codes(sms: SmsStandin, code: int, permanent: bool,
                               retry_after: float | None) -> None:
    sms.error_next(1, status_code=code)
    result = send(channel_for(sms))
    assert result.permanent is permanent and result.retryable is not permanent
    assert result.retry_after == retry_after and str(code) in result.reason


def test_http_400_is_permanent(sms: SmsStandin) -> None:
    sms.fail_next(1, status=400)
    assert send(channel_for(sms)).permanent


@pytest.mark.parametrize("recipient", ["", "12", "not a phone", "+7 916 123"])
def test_bad_number_is_permanent_without_a_request(sms: SmsStandin, recipient: str) -> None:
    assert send(channel_for(sms), recipient).permanent
    assert sms.requests == []


def test_wrong_api_id_is_retryable_and_not_leaked(sms: SmsStandin) -> None:
    result = send(SmsChannel("secret-wrong-id", base_url=sms.url))
    assert result.retryable and result.reason.startswith("200:")
    assert "secret-wrong-id" not in result.reason


@pytest.mark.parametrize(("text", "digits"), [
    ("+7 (916) 123-45-67", "79161234567"),
    ("8 916 123 45 67", "79161234567"),     # Russian trunk prefix
    ("+49 30 901820", "4930901820"),
    ("123", None),
])
def test_normalise_phone(text: str, digits: str | None) -> None:
    assert normalise_phone(text) == digits


def test_unknown_or_odd_codes_are_retryable() -> None:
    assert classify_code(999).retryable
    assert classify_code("202").permanent
    assert classify_code(None).retryable
