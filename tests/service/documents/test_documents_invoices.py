"""An invoice issued for a planned payment, paid online through the provider stand-in:
the webhook records the receipt once and the invoice becomes paid once."""
from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import text

from services.kit.envelope import Envelope
from services.kit.errors import Conflict, ValidationError
from tests.service.documents.conftest import MANAGER, template_id
from tests.support.infra import publish_events, wait_until


@pytest.fixture
def invoice(deal: dict[str, Any], rpc: Any) -> dict[str, Any]:
    [payment] = rpc.call("deals", "create_payment_plan", deal["id"],
                         {"parts": 1, "first_due_date": str(date.today())}, MANAGER)
    made = rpc.call("documents", "generate_document", deal["id"],
                    template_id(rpc, "invoice"), MANAGER)
    assert made["planned_payment_id"] == payment["id"]
    return made


def test_an_invoice_paid_online_becomes_paid_once(invoice, rpc, provider, spy):
    paid_events = spy("documents", "document_paid")
    link = rpc.call("documents", "open_link", invoice["token"], {})
    assert link["can_pay_online"] and not link["paid"]

    started = rpc.call("documents", "pay_online", invoice["token"], "https://crm.test/d/x")
    again = rpc.call("documents", "pay_online", invoice["token"], "https://crm.test/d/x")
    assert started == again  # the same idempotence key: one provider payment
    [request, _] = provider.created
    assert request["key"] and request["body"]["amount"] == {"value": "120000.50",
                                                            "currency": "RUB"}
    assert request["body"]["confirmation"]["type"] == "redirect"
    provider_id = started["confirmation_url"].rsplit("/", 1)[1]
    provider.succeed(provider_id)
    hook = provider.notification(provider_id)
    assert rpc.call("payments", "online_payment_notification", hook)["status"] == "recorded"
    assert rpc.call("payments", "online_payment_notification", hook)["status"] == "duplicate"

    wait_until(lambda: rpc.call("documents", "get_document", invoice["id"])["status"] == "paid")
    assert len(paid_events.wait_for("document_paid")) == 1
    document = rpc.call("documents", "get_document", invoice["id"])
    assert document["paid_amount"] == "120000.50"
    with pytest.raises(Conflict):
        rpc.call("documents", "pay_online", invoice["token"], "https://crm.test/d/x")
    assert rpc.call("documents", "open_link", invoice["token"], {})["paid"]


def test_an_invoice_for_a_payment_of_another_deal_is_refused(deal, rpc):
    with pytest.raises(ValidationError) as caught:
        rpc.call("documents", "generate_document", deal["id"], template_id(rpc, "invoice"),
                 MANAGER, planned_payment_id=999999)
    assert caught.value.details["field"] == "planned_payment_id"


def test_a_contract_cannot_be_paid_online(deal, rpc):
    contract = rpc.call("documents", "generate_document", deal["id"],
                        template_id(rpc, "contract"), MANAGER)
    with pytest.raises(ValidationError):
        rpc.call("documents", "pay_online", contract["token"], "https://crm.test/")


def test_receipts_arriving_together_pay_the_invoice_once_with_their_sum(invoice, rpc, spy,
                                                                        amqp_uri, session_of):
    paid_events = spy("documents", "document_paid")
    first, second, late = (Envelope.new("payment_received", {
        "receipt_id": 9100 + n, "payment_id": invoice["planned_payment_id"],
        "deal_id": invoice["deal_id"], "amount": "60000.25", "currency": "RUB",
        "received_on": str(date.today()), "source": "bank"}).to_dict() for n in (1, 2, 3))
    # the first one twice (a redelivery), a receipt of a payment no invoice is for, and
    # one more after the invoice is paid (it pays nothing more)
    stray = Envelope.new("payment_received", {
        "receipt_id": 9199, "payment_id": 999_999, "deal_id": invoice["deal_id"],
        "amount": "1.00", "currency": "RUB", "received_on": str(date.today()),
        "source": "bank"}).to_dict()
    publish_events(amqp_uri, "payments", "payment_received", [first, stray, first, second, late])

    wait_until(lambda: rpc.call("documents", "get_document", invoice["id"])["status"] == "paid")
    [paid] = paid_events.wait_for("document_paid")
    assert paid["data"]["receipt_id"] == 9102  # the receipt that covered the amount
    document = rpc.call("documents", "get_document", invoice["id"])
    assert document["paid_amount"] == "120000.50"
    with session_of("documents") as db:  # all four receipts applied, the repeat not
        wait_until(lambda: db.execute(text(
            "SELECT count(*) FROM inbox WHERE handler = 'documents.on_payment_received'"))
            .scalar() == 4, message="the four receipts applied")
    assert len(paid_events.of_type("document_paid")) == 1
    assert rpc.call("documents", "get_document", invoice["id"])["paid_amount"] == "120000.50"
