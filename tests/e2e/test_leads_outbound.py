"""A manager writes to a contact from the deal: the mail goes out through the
notifications e-mail channel (an SMTP stand-in plays the provider), shows in the feed at
once and is marked sent; the contact's reply, from another address, threads back into
the same deal by its In-Reply-To — through the real SMTP listener."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

import pytest

from tests.support.notify_standins import CommsStack, comms_stack
from tests.support.stack import wait_for


@pytest.fixture(scope="module")
def comms(pytestconfig: Any) -> CommsStack:
    return comms_stack(pytestconfig)


def test_an_outbound_email_is_in_the_feed_and_its_reply_threads_back(comms: CommsStack
                                                                      ) -> None:
    stack = comms.stack
    client = stack.ok("POST", "/clients", json={"kind": "person", "name": "Олег Письмов"})
    stack.ok("POST", f"/clients/{client['id']}/contacts",
             json={"name": "Олег Письмов", "emails": ["oleg-out@client.example"]})
    deal = stack.ok("POST", "/deals", json={"name": "Письма", "client_id": client["id"]})
    [contact] = stack.ok("GET", f"/deals/{deal['id']}")["deal"]["contacts"]
    sent = stack.ok("POST", f"/deals/{deal['id']}/emails", json={
        "contact_id": contact["contact_id"], "subject": "Коммерческое предложение",
        "text": "Добрый день! Предложение во вложении.", "request_id": "kp-1"})
    assert sent["feed_entry"]["data"]["status"] == "queued"

    def delivered() -> Any:
        return next((m for m in comms.smtp.messages
                     if m["To"] == "oleg-out@client.example"), None)

    outbound = wait_for(delivered, message="the e-mail at the provider")
    assert outbound["Message-ID"] == sent["message"]["message_id"]

    def feed_lines() -> list[dict[str, Any]]:
        feed = stack.ok("GET", f"/deals/{deal['id']}")["feed"]
        return [e["item"] for e in feed if e["kind"] == "email"]

    wait_for(lambda: any(x["data"]["status"] == "sent" for x in feed_lines()),
             message="the feed line marked sent")

    reply = EmailMessage()
    reply["From"] = "oleg.home@elsewhere.example"  # another address: threads by header
    reply["To"] = "crm@crm.test"
    reply["Subject"] = "Re: Коммерческое предложение"
    reply["Message-ID"] = "<reply-kp-1@elsewhere.example>"
    reply["In-Reply-To"] = outbound["Message-ID"]
    reply.set_content("Спасибо, согласны.")
    with smtplib.SMTP("127.0.0.1", int(stack.env["SMTP_LISTEN_PORT"]), timeout=10) as smtp:
        smtp.send_message(reply)
    lines = wait_for(lambda: len(feed_lines()) == 2 and feed_lines(),
                     message="the reply in the same deal")
    directions = sorted((x["data"]["direction"], x["data"]["status"]) for x in lines)
    assert directions == [("in", "received"), ("out", "sent")]
