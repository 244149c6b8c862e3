"""SMS channel for an SMS.ru-style HTTP API (``/sms/send`` with ``api_id``, ``to``, ``msg``).

The API answers HTTP 200 with its own status codes, at the top level (request-wide
problems) and per phone number; 100 means the message was accepted.
"""
from __future__ import annotations

from typing import Any

import phonenumbers
import requests

from services.notifications.channels._http import (
    DEFAULT_TIMEOUTS,
    TransportFailure,
    classify_http_error,
    http_call,
    json_body,
    parse_retry_after,
)
from services.notifications.channels.result import DeliveryResult

DEFAULT_BASE_URL = "https://sms.ru"
ACCEPTED = 100

# Codes after which the same message to the same number can never succeed.
PERMANENT_CODES = {
    202: "invalid recipient number",
    203: "empty message text",
    205: "message too long",
    207: "no route to this number",
    209: "number is in the stop list",
    232: "daily limit of identical messages to this number",
}
# Codes worth retrying, with a wait (seconds) when the code implies one.  Account
# problems (bad api_id, no money, unapproved sender) are here on purpose: the recipient
# is fine, and an operator can fix the account before the retries run out.
RETRYABLE_CODES: dict[int, tuple[str, float | None]] = {
    200: ("api_id rejected (check the channel configuration)", None),
    201: ("not enough money on the account", None),
    204: ("sender name not approved", None),
    206: ("daily sending limit reached", 3600.0),
    220: ("service temporarily unavailable", None),
    230: ("daily limit of messages to this number", 3600.0),
    231: ("per-minute limit of identical messages to this number", 60.0),
    233: ("too many repeated messages to this number", 600.0),
    300: ("token rejected (check the channel configuration)", None),
    301: ("credentials rejected (check the channel configuration)", None),
    500: ("provider server error", None),
}


class SmsChannel:
    name = "sms"

    def __init__(self, api_id: str, *, base_url: str = DEFAULT_BASE_URL,
                 sender: str | None = None, region: str = "RU",
                 connect_timeout: float = DEFAULT_TIMEOUTS[0],
                 read_timeout: float = DEFAULT_TIMEOUTS[1],
                 session: requests.Session | None = None) -> None:
        if not api_id:
            raise ValueError("an SMS api_id is required")
        self._api_id = api_id
        self._url = f"{base_url.rstrip('/')}/sms/send"
        self._sender = sender
        self._region = region  # for numbers written without a country code
        self._timeouts = (connect_timeout, read_timeout)
        self._session = session or requests.Session()

    def send(self, recipient: str, subject: str, text: str, *,
             idempotency_key: str) -> DeliveryResult:
        # The subject is not sent: an SMS is billed per segment and the text stands alone.
        # The API has no idempotency key: a retry after a read timeout may duplicate.
        phone = normalise_phone(recipient, self._region)
        if phone is None:
            return DeliveryResult.rejected(f"bad recipient: {recipient!r} is not a phone number")
        form = {"api_id": self._api_id, "to": phone, "msg": text, "json": 1}
        if self._sender:
            form["from"] = self._sender
        try:
            # POST: the text can be long, and a query string would put it in access logs.
            response = http_call(self._session, "POST", self._url, data=form,
                                 timeouts=self._timeouts, secrets=(self._api_id,))
        except TransportFailure as exc:
            return DeliveryResult.retry_later(exc.reason)
        return _result_of(response, phone)


def normalise_phone(recipient: str, region: str = "RU") -> str | None:
    """Digits of the E.164 form ("79161234567"), as SMS.ru wants; None when not valid."""
    try:
        number = phonenumbers.parse(recipient, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def _result_of(response: requests.Response, phone: str) -> DeliveryResult:
    if response.status_code != 200:
        return classify_http_error(response.status_code, response.reason or "",
                                   parse_retry_after(response.headers.get("Retry-After")))
    body = json_body(response)
    if body is None:
        return DeliveryResult.retry_later("unexpected response: not JSON")
    if body.get("status") != "OK":
        return classify_code(body.get("status_code"), body.get("status_text"))
    entry = _entry_for(body.get("sms"), phone)
    if entry is None:
        return DeliveryResult.retry_later("unexpected response: no status for the number")
    if entry.get("status") == "OK" and entry.get("status_code") == ACCEPTED:
        sms_id = entry.get("sms_id")
        return DeliveryResult.accepted(None if sms_id is None else str(sms_id))
    return classify_code(entry.get("status_code"), entry.get("status_text"))


def _entry_for(per_number: Any, phone: str) -> dict[str, Any] | None:
    if not isinstance(per_number, dict) or not per_number:
        return None
    # We send to one number; fall back to the only entry if the provider reformatted it.
    entry = per_number.get(phone)
    if entry is None and len(per_number) == 1:
        entry = next(iter(per_number.values()))
    return entry if isinstance(entry, dict) else None


def classify_code(code: Any, provider_text: Any = None) -> DeliveryResult:
    """An SMS.ru status code other than 100; unknown codes are retried (bounded by policy)."""
    detail = f" ({provider_text})" if provider_text else ""
    try:
        code = int(code)
    except (TypeError, ValueError):
        return DeliveryResult.retry_later(f"unexpected status code {code!r}{detail}")
    if code in PERMANENT_CODES:
        return DeliveryResult.rejected(f"{code}: {PERMANENT_CODES[code]}{detail}")
    meaning, wait = RETRYABLE_CODES.get(code, ("unknown status code", None))
    return DeliveryResult.retry_later(f"{code}: {meaning}{detail}", wait)
