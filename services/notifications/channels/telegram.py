"""Telegram Bot API channel: ``sendMessage`` for delivery, ``getUpdates`` for linking.

Linking: the CRM shows a user a one-time code (or a t.me/<bot>?start=<code> link); the
user sends it to the bot; a poller calls ``get_updates`` and ``find_link_codes`` and
binds the code's owner to the chat id.
"""
from __future__ import annotations

import re
from typing import Any, NamedTuple

import requests

from services.kit.errors import ServiceUnavailable
from services.notifications.channels._http import (
    DEFAULT_TIMEOUTS,
    TransportFailure,
    classify_http_error,
    http_call,
    json_body,
    parse_retry_after,
)
from services.notifications.channels.result import DeliveryResult

DEFAULT_BASE_URL = "https://api.telegram.org"
MAX_TEXT_LENGTH = 4096  # sendMessage limit, counted in UTF-16 code units
# A numeric chat id (negative for groups) or a public channel's @username.
_CHAT_ID = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")
# Deep-link start parameters allow exactly these characters, up to 64 of them.
DEFAULT_CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{6,64}")
_START = re.compile(r"/start(?:@\w+)?(?:\s+(?P<arg>\S+))?\s*")


class LinkCode(NamedTuple):
    code: str
    chat_id: int
    update_id: int


class TelegramChannel:
    name = "telegram"

    def __init__(self, token: str, *, base_url: str = DEFAULT_BASE_URL,
                 connect_timeout: float = DEFAULT_TIMEOUTS[0],
                 read_timeout: float = DEFAULT_TIMEOUTS[1],
                 session: requests.Session | None = None) -> None:
        if not token:
            raise ValueError("a Telegram bot token is required")
        self._token = token
        self._base_url = base_url.rstrip("/")
        self._timeouts = (connect_timeout, read_timeout)
        self._session = session or requests.Session()

    def send(self, recipient: str, subject: str, text: str, *,
             idempotency_key: str) -> DeliveryResult:
        # The Bot API has no idempotency key: a retry after a read timeout may duplicate.
        chat_id = _parse_chat_id(recipient)
        if chat_id is None:
            return DeliveryResult.rejected(f"bad recipient: {recipient!r} is not a chat id")
        payload = {"chat_id": chat_id, "text": compose_text(subject, text)}
        try:
            response = self._call("sendMessage", payload, self._timeouts)
        except TransportFailure as exc:
            return DeliveryResult.retry_later(exc.reason)
        body = json_body(response)
        if body is not None and body.get("ok") is True:
            message_id = (body.get("result") or {}).get("message_id")
            return DeliveryResult.accepted(None if message_id is None else str(message_id))
        return _failure(response, body)

    def get_updates(self, offset: int | None = None, *, poll_timeout: int = 0,
                    limit: int = 100) -> list[dict[str, Any]]:
        """Updates from ``offset`` on (passing an offset confirms all earlier ones).

        Raises ``ServiceUnavailable`` when Telegram does not answer: unlike ``send`` the
        caller is a poller or an RPC handler, and both just try again later.
        """
        payload: dict[str, Any] = {"timeout": poll_timeout, "limit": limit}
        if offset is not None:
            payload["offset"] = offset
        # Long polling holds the request open for poll_timeout, so the read must outlast it.
        timeouts = (self._timeouts[0], self._timeouts[1] + poll_timeout)
        try:
            response = self._call("getUpdates", payload, timeouts)
        except TransportFailure as exc:
            raise ServiceUnavailable(f"telegram: {exc.reason}", provider="telegram") from None
        body = json_body(response)
        if body is not None and body.get("ok") is True and isinstance(body.get("result"), list):
            return body["result"]
        # 409 means another getUpdates poller or a webhook is active for this bot.
        failure = _failure(response, body)
        raise ServiceUnavailable(f"telegram: {failure.reason}", provider="telegram",
                                 retry_after=failure.retry_after)

    def _call(self, method: str, payload: dict[str, Any],
              timeouts: tuple[float, float]) -> requests.Response:
        url = f"{self._base_url}/bot{self._token}/{method}"
        return http_call(self._session, "POST", url, json=payload, timeouts=timeouts,
                         secrets=(self._token,))


def compose_text(subject: str, text: str) -> str:
    """Telegram has no subject line: it becomes the first paragraph."""
    message = f"{subject.strip()}\n\n{text}" if subject.strip() else text
    return truncate_utf16(message, MAX_TEXT_LENGTH)


def truncate_utf16(text: str, limit: int) -> str:
    """Cut to ``limit`` UTF-16 units (how Telegram counts); a cut message beats a 400."""
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    kept, used = [], 0
    for char in text:
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit - 1:  # keep one unit for the ellipsis
            break
        kept.append(char)
    return "".join(kept) + "…"


def _parse_chat_id(recipient: str) -> int | str | None:
    recipient = recipient.strip()
    if not _CHAT_ID.fullmatch(recipient):
        return None
    return recipient if recipient.startswith("@") else int(recipient)


def _failure(response: requests.Response, body: dict[str, Any] | None) -> DeliveryResult:
    """Bot API errors come as {"ok": false, "error_code", "description", "parameters"}."""
    if body is None:
        return classify_http_error(response.status_code, "response is not Bot API JSON",
                                   parse_retry_after(response.headers.get("Retry-After")))
    code = body.get("error_code")
    if not isinstance(code, int):
        code = response.status_code
    description = str(body.get("description") or "")
    parameters = body.get("parameters") or {}
    retry_after = parse_retry_after(parameters.get("retry_after"))
    if retry_after is None:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if "migrate_to_chat_id" in parameters:
        # The group became a supergroup with a new id; the stored id is dead for good.
        description += f" (chat migrated to {parameters['migrate_to_chat_id']})"
    return classify_http_error(code, description, retry_after)


def find_link_codes(updates: list[dict[str, Any]],
                    pattern: re.Pattern[str] = DEFAULT_CODE_PATTERN) -> list[LinkCode]:
    """Link codes users sent to the bot: "/start CODE" (deep link) or the bare code.

    Only private chats from people count: a code pasted into a group would otherwise
    route someone's personal notifications to the whole group.
    """
    found = []
    for update in updates:
        message = update.get("message") or {}
        chat = message.get("chat") or {}
        sender = message.get("from") or {}
        if chat.get("type") != "private" or sender.get("is_bot"):
            continue
        code = _code_in(message.get("text") or "", pattern)
        if code is not None:
            found.append(LinkCode(code, int(chat["id"]), int(update["update_id"])))
    return found


def next_offset(updates: list[dict[str, Any]]) -> int | None:
    """The offset that confirms every update in ``updates`` (None when there are none)."""
    ids = [int(update["update_id"]) for update in updates]
    return max(ids) + 1 if ids else None


def _code_in(text: str, pattern: re.Pattern[str]) -> str | None:
    text = text.strip()
    start = _START.fullmatch(text)
    candidate = (start.group("arg") or "") if start else text
    return candidate if pattern.fullmatch(candidate) else None
