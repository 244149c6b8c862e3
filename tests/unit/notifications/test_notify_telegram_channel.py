"""TelegramChannel against a local Bot API stand-in, and the link-code parsing."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from services.kit.errors import ServiceUnavailable
from services.notifications.channels import TelegramChannel, find_link_codes, next_offset
from services.notifications.channels.telegram import MAX_TEXT_LENGTH, truncate_utf16
from tests.support.notify_standins import TelegramStandin


@pytest.fixture
def bot() -> Iterator[TelegramStandin]:
    with TelegramStandin() as standin:
        yield standin


def channel_for(standin: TelegramStandin, **overrides: Any) -> TelegramChannel:
    return TelegramChannel(standin.token, base_url=standin.url, connect_timeout=1.0,
                           read_timeout=overrides.pop("read_timeout", 2.0), **overrides)


def send(channel: TelegramChannel, recipient: str = "1001") -> Any:
    return channel.send(recipient, "Новая задача", "Позвонить клиенту",
                        idempotency_key="task-1")


def test_send_delivers_subject_and_text(bot: TelegramStandin) -> None:
    result = send(channel_for(bot))
    [sent] = bot.wait_for_messages(1)
    assert sent.chat_id == 1001
    assert sent.text == "Новая задача\n\nПозвонить клиенту"
    assert result.ok and result.provider_id == str(sent.message_id)


def test_empty_subject_sends_text_only(bot: TelegramStandin) -> None:
    channel_for(bot).send("1001", " ", "Только текст", idempotency_key="k")
    assert bot.wait_for_messages(1)[0].text == "Только текст"


def test_server_error_is_retryable_then_succeeds(bot: TelegramStandin) -> None:
    bot.fail_next(1, status=502)
    channel = channel_for(bot)
    failed = send(channel)
    assert failed.retryable and "502" in failed.reason
    assert send(channel).ok
    assert len(bot.wait_for_messages(1)) == 1


def test_too_many_requests_carries_retry_after(bot: TelegramStandin) -> None:
    bot.throttle_next(1, retry_after=17)
    result = send(channel_for(bot))
    assert result.retryable and result.retry_after == 17


def test_timeout_is_retryable(bot: TelegramStandin) -> None:
    bot.hang_next(1)
    result = send(channel_for(bot, read_timeout=0.3))
    assert result.retryable and result.reason.startswith("timeout")
    assert len(bot.requests) == 1  # it did reach the server: a retry may duplicate


def test_blocked_bot_is_permanent(bot: TelegramStandin) -> None:
    bot.block_next(1)
    result = send(channel_for(bot))
    assert result.permanent and "blocked" in result.reason


@pytest.mark.parametrize("recipient", ["", "not a chat", "12ab", "@x"])
def test_bad_chat_id_is_permanent_without_a_request(bot: TelegramStandin,
                                                    recipient: str) -> None:
    assert send(channel_for(bot), recipient).permanent
    assert bot.requests == []


def test_channel_username_is_a_valid_recipient(bot: TelegramStandin) -> None:
    assert send(channel_for(bot), "@crm_news").ok
    assert bot.wait_for_messages(1)[0].chat_id == "@crm_news"


def test_wrong_token_is_retryable(bot: TelegramStandin) -> None:
    channel = TelegramChannel("999:wrong", base_url=bot.url)
    result = send(channel)
    assert result.retryable and "401" in result.reason


def test_token_never_appears_in_the_reason() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = "777:very-secret-token"
    result = send(TelegramChannel(token, base_url=f"http://127.0.0.1:{port}",
                                  connect_timeout=1.0))
    assert result.retryable and "connection failed" in result.reason
    assert "/bot***/sendMessage" in result.reason and token not in result.reason


def test_long_text_is_cut_to_the_limit(bot: TelegramStandin) -> None:
    result = channel_for(bot).send("1001", "", "я" * 5000, idempotency_key="k")
    assert result.ok  # the stand-in, like Telegram, answers 400 above 4096
    text = bot.wait_for_messages(1)[0].text
    assert len(text) == MAX_TEXT_LENGTH and text.endswith("…")


def test_truncation_counts_utf16_units() -> None:
    assert truncate_utf16("abc", 3) == "abc"
    assert truncate_utf16("😀😀😀", 4) == "😀…"  # each emoji is two units
    assert truncate_utf16("abcdef", 4) == "abc…"


def test_get_updates_finds_link_codes_and_confirms(bot: TelegramStandin) -> None:
    channel = channel_for(bot)
    bot.push_message(501, "/start Ab12cd34")
    bot.push_message(502, "hi")
    bot.push_message(503, "  XyZ-98_76  ")
    updates = channel.get_updates()
    codes = find_link_codes(updates)
    assert [(c.code, c.chat_id) for c in codes] == [("Ab12cd34", 501), ("XyZ-98_76", 503)]
    assert codes[0].update_id == updates[0]["update_id"]
    assert channel.get_updates(next_offset(updates)) == []


def test_get_updates_failure_raises_service_unavailable(bot: TelegramStandin) -> None:
    bot.throttle_next(1, retry_after=5)
    with pytest.raises(ServiceUnavailable) as caught:
        channel_for(bot).get_updates()
    assert caught.value.details == {"provider": "telegram", "retry_after": 5.0}


def _update(text: Any, *, update_id: int = 1, chat_type: str = "private",
            is_bot: bool = False) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "text": text, "chat": {"id": 42, "type": chat_type},
        "from": {"id": 42, "is_bot": is_bot}}}


@pytest.mark.parametrize(("text", "code"), [
    ("/start LINK42abc", "LINK42abc"),
    ("/start@CrmBot LINK42abc", "LINK42abc"),
    ("LINK42abc", "LINK42abc"),
    ("/start", None),
    ("/start abc", None),           # too short to be a code
    ("my code is LINK42abc", None),  # only the whole message counts
    ("ПРИВЕТ123", None),
    (None, None),                    # a sticker or photo has no text
])
def test_find_link_codes_reads_the_message(text: Any, code: str | None) -> None:
    found = find_link_codes([_update(text)])
    assert [c.code for c in found] == ([code] if code else [])


def test_find_link_codes_ignores_groups_bots_and_other_updates() -> None:
    updates = [_update("LINK42abc", chat_type="group"),
               _update("LINK42abc", is_bot=True),
               {"update_id": 3, "edited_message": {"text": "LINK42abc"}}]
    assert find_link_codes(updates) == []
    assert next_offset(updates) == 4
    assert next_offset([]) is None
