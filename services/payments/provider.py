"""The online payment provider's API (YooKassa-style, HTTP basic auth shop id : secret
key): ``POST {base}/v3/payments`` starts a payment the client is redirected to,
``GET {base}/v3/payments/{id}`` confirms a notification.

A webhook body is never trusted on its own: anyone can POST to a public URL.  What the
provider's API answers about the payment is what gets recorded.
"""
from __future__ import annotations

from typing import Any

import requests

from services.kit.errors import ServiceUnavailable, ValidationError


class ProviderClient:
    def __init__(self, base_url: str, shop_id: str, secret_key: str,
                 timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = (shop_id, secret_key)
        self.timeout = timeout

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ProviderClient:
        base = str(config.get("ONLINE_PAYMENTS_API_URL") or "")
        if not base:
            raise ServiceUnavailable("online payments are not configured "
                                     "(ONLINE_PAYMENTS_API_URL)", service="payments")
        return cls(base, str(config.get("ONLINE_PAYMENTS_SHOP_ID") or ""),
                   str(config.get("ONLINE_PAYMENTS_SECRET_KEY") or ""),
                   float(config.get("ONLINE_PAYMENTS_TIMEOUT", 5)))

    def create_payment(self, body: dict[str, Any], idempotence_key: str) -> dict[str, Any]:
        """Start a payment; the same ``idempotence_key`` gives the same payment back
        (the provider's ``Idempotence-Key``), so a retried click pays once."""
        try:
            response = requests.post(f"{self.base_url}/v3/payments", json=body,
                                     auth=self.auth, timeout=self.timeout,
                                     headers={"Idempotence-Key": idempotence_key,
                                              "Accept": "application/json"})
        except requests.RequestException as exc:
            raise ServiceUnavailable(f"the payment provider did not answer: {exc}",
                                     service="payment_provider") from None
        created = self._answer(response)
        url = (created.get("confirmation") or {}).get("confirmation_url")
        if not created.get("id") or not isinstance(url, str) or not url.startswith("http"):
            raise ServiceUnavailable("the payment provider gave no confirmation URL",
                                     service="payment_provider")
        return created

    def payment(self, provider_id: str) -> dict[str, Any]:
        url = f"{self.base_url}/v3/payments/{provider_id}"
        try:
            response = requests.get(url, auth=self.auth, timeout=self.timeout,
                                    headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise ServiceUnavailable(f"the payment provider did not answer: {exc}",
                                     service="payment_provider") from None
        if response.status_code == 404:
            raise ValidationError("Платёжный сервис не знает этот платёж.", field="object.id",
                                  key="notice.unknown")
        return self._answer(response)

    def _answer(self, response: requests.Response) -> dict[str, Any]:
        if response.status_code in (401, 403):
            raise ServiceUnavailable("the payment provider refused our credentials",
                                     service="payment_provider")
        if response.status_code != 200:
            raise ServiceUnavailable(f"the payment provider answered {response.status_code}",
                                     service="payment_provider")
        try:
            body = response.json()
        except ValueError:
            raise ServiceUnavailable("the payment provider answered something that is not "
                                     "JSON", service="payment_provider") from None
        if not isinstance(body, dict):
            raise ServiceUnavailable("the payment provider's answer is not an object",
                                     service="payment_provider")
        return body
