"""Online payment (P6): a provider's webhook, checked against the provider's API (a local
HTTP stand-in), records one receipt; a repeated webhook changes nothing."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from services.kit.errors import ServiceUnavailable, ValidationError
from tests.service.payments.conftest import Payments


class Provider:
    """GET /v3/payments/{id} like YooKassa's API, with basic auth."""

    def __init__(self) -> None:
        self.payments: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.failing = False
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                provider.requests.append((self.path, self.headers.get("Authorization", "")))
                found = provider.payments.get(self.path.rsplit("/", 1)[-1])
                status = 500 if provider.failing else 200 if found else 404
                body = json.dumps(found or {"type": "error", "code": "not_found"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def succeed(self, provider_id: str, payment_id: int, value: str,
                currency: str = "RUB", status: str = "succeeded") -> dict[str, Any]:
        self.payments[provider_id] = {
            "id": provider_id, "status": status, "paid": status == "succeeded",
            "amount": {"value": value, "currency": currency},
            "captured_at": f"{date.today().isoformat()}T10:51:18.139Z",
            "metadata": {"payment_id": str(payment_id)}, "test": True}
        return self.payments[provider_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def notification(provider_id: str, value: str = "2.00", event: str = "payment.succeeded",
                 payment_id: int = 1) -> dict[str, Any]:
    return {"type": "notification", "event": event, "object": {
        "id": provider_id, "status": "succeeded", "amount": {"value": value, "currency": "RUB"},
        "metadata": {"payment_id": str(payment_id)}}}


@pytest.fixture
def provider() -> Iterator[Provider]:
    running = Provider()
    yield running
    running.close()


@pytest.fixture
def online(start_payments, rpc, amqp_uri, session_of, storage, provider) -> Payments:
    start_payments(ONLINE_PAYMENTS_API_URL=provider.url, ONLINE_PAYMENTS_SHOP_ID="shop-1",
                   ONLINE_PAYMENTS_SECRET_KEY="test-secret", ONLINE_PAYMENTS_TIMEOUT=2)
    return Payments(rpc, amqp_uri, session_of, storage)


def test_confirmed_webhook_records_one_online_receipt(online, provider, spy):
    received = spy("payments", "payment_received")
    payment = online.plan(801, "1500.00", date.today())
    provider.succeed("2d1f-000f-5000-9000-1", payment["id"], "1500.00")
    # the body's amount is not trusted: the provider's answer is what counts
    first = online.call("online_payment_notification",
                        notification("2d1f-000f-5000-9000-1", "1.00", payment_id=payment["id"]))
    assert first["status"] == "recorded"
    assert (first["receipt"]["amount"], first["receipt"]["source"]) == ("1500.00", "online")
    path, auth = provider.requests[0]
    assert path == "/v3/payments/2d1f-000f-5000-9000-1" and auth.startswith("Basic ")
    again = online.call("online_payment_notification",
                        notification("2d1f-000f-5000-9000-1", payment_id=payment["id"]))
    assert again["status"] == "duplicate" and again["receipt"]["id"] == first["receipt"]["id"]
    [event] = received.wait_for("payment_received")
    assert (event["data"]["source"], event["data"]["amount"], event["data"]["payment_id"]) == (
        "online", "1500.00", payment["id"])
    panel = online.call("deal_payments", 801)
    assert (panel["paid"], len(panel["receipts"])) == ("1500.00", 1)
    assert len(received.of_type("payment_received")) == 1


def test_webhooks_the_provider_does_not_confirm_change_nothing(online, provider):
    payment = online.plan(802, "100.00", date.today())
    with pytest.raises(ValidationError) as unknown:
        online.call("online_payment_notification", notification("forged-1"))
    assert unknown.value.field == "object.id"
    provider.succeed("pending-1", payment["id"], "100.00", status="pending")
    with pytest.raises(ValidationError) as pending:
        online.call("online_payment_notification", notification("pending-1"))
    assert pending.value.field == "object.status"
    provider.succeed("usd-1", payment["id"], "100.00", currency="USD")
    with pytest.raises(ValidationError) as currency:
        online.call("online_payment_notification", notification("usd-1"))
    assert currency.value.field == "object.amount.currency"
    provider.succeed("nowhere-1", 999999, "100.00")
    with pytest.raises(ValidationError) as missing:
        online.call("online_payment_notification", notification("nowhere-1"))
    assert missing.value.field == "object.metadata.payment_id"
    for body, field in [({"type": "x"}, "type"), ([], "body"),
                        ({"type": "notification", "event": "payment.succeeded"}, "object"),
                        (notification("../../v3/refunds"), "object.id")]:
        with pytest.raises(ValidationError) as malformed:
            online.call("online_payment_notification", body)
        assert malformed.value.field == field
    ignored = online.call("online_payment_notification",
                          notification("x-1", event="payment.canceled"))
    assert ignored == {"status": "ignored", "event": "payment.canceled"}
    provider.succeed("ok-1", payment["id"], "100.00")
    provider.failing = True
    with pytest.raises(ServiceUnavailable):  # the gateway answers 503: the provider retries
        online.call("online_payment_notification", notification("ok-1"))
    assert online.call("deal_payments", 802)["paid"] == "0.00"
    provider.failing = False
    assert online.call("online_payment_notification", notification("ok-1"))["status"] == \
        "recorded"
