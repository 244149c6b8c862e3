"""Plumbing shared by the HTTP channels: timeouts, transport errors, status classes."""
from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from services.kit import clock
from services.notifications.channels.result import DeliveryResult

# (connect, read) seconds.  Connect is short: a provider that does not accept a TCP
# connection in a few seconds is down; the read allows for a slow but working API.
DEFAULT_TIMEOUTS = (3.05, 10.0)


class TransportFailure(Exception):
    """No HTTP answer at all (timeout, refused, reset).  Internal to the channels."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """Secrets travel in URLs (Telegram token) and forms (SMS api_id); requests puts the
    URL into its error messages, and reasons end up in the database and logs."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def http_call(session: requests.Session, method: str, url: str, *,
              timeouts: tuple[float, float], secrets: tuple[str, ...] = (),
              **kwargs: Any) -> requests.Response:
    """One request; transport trouble becomes ``TransportFailure``, bad URLs still raise."""
    try:
        return session.request(method, url, timeout=timeouts, **kwargs)
    except requests.Timeout as exc:
        # A read timeout may mean the provider did act on the request: a retry can duplicate.
        raise TransportFailure(f"timeout: {redact(str(exc), secrets)}") from exc
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise TransportFailure(f"connection failed: {redact(str(exc), secrets)}") from exc


def json_body(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def parse_retry_after(value: Any, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After value: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None or value == "":
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    now = now or clock.now()
    return max(0.0, (moment - now).total_seconds())


def classify_http_error(status: int, description: str,
                        retry_after: float | None = None) -> DeliveryResult:
    """A non-success HTTP status, by whose fault it is and whether waiting helps."""
    reason = f"HTTP {status}: {description}".rstrip(": ")
    if status == 429 or retry_after is not None:
        return DeliveryResult.retry_later(reason, retry_after)
    if status in (401, 404, 407):
        # Our credentials or URL are wrong: nothing is wrong with the message, and an
        # operator can fix the configuration while the retries are still pending.
        return DeliveryResult.retry_later(f"{reason} (check the channel configuration)")
    if status == 408 or status >= 500:
        return DeliveryResult.retry_later(reason)
    if 400 <= status < 500:
        return DeliveryResult.rejected(reason)
    return DeliveryResult.retry_later(f"unexpected {reason}")
