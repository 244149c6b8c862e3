"""Mail into the CRM through the real SMTP listener process: a stranger's message with an
attachment becomes an inbox entry; once accepted, a reply to it threads into the deal's
feed; the lead API answers programs."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

import requests

from tests.support.stack import wait_for


def send(stack: Any, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", int(stack.env["SMTP_LISTEN_PORT"]), timeout=10) as smtp:
        smtp.send_message(message)


def test_mail_with_attachment_becomes_a_lead_and_the_reply_lands_in_the_deal_feed(
        stack: Any) -> None:
    first = EmailMessage()
    first["From"] = "Закупщик <buyer-e2e@shop.example>"
    first["To"] = "sales@crm.example"
    first["Subject"] = "Запрос цены"
    first["Message-ID"] = "<price-1@shop.example>"
    first.set_content("Пришлите цену на 20 штук, реквизиты во вложении.")
    first.add_attachment(b"%PDF-1.4 requisites", maintype="application", subtype="pdf",
                         filename="реквизиты.pdf")
    send(stack, first)

    def lead() -> Any:
        items = stack.ok("GET", "/leads")["items"]
        return next((x for x in items if x["email"] == "buyer-e2e@shop.example"), None)

    found = wait_for(lead, message="the mail's lead in the inbox")
    assert found["source"] == "email" and found["name"] == "Закупщик"
    assert [f["name"] for f in found["attachments"]] == ["реквизиты.pdf"]
    accepted = stack.ok("POST", f"/leads/{found['id']}/accept", json={})
    deal_id = accepted["deal_id"]

    reply = EmailMessage()
    reply["From"] = "buyer-e2e@shop.example"
    reply["To"] = "sales@crm.example"
    reply["Subject"] = "Re: Запрос цены"
    reply["Message-ID"] = "<price-2@shop.example>"
    reply["In-Reply-To"] = "<price-1@shop.example>"
    reply["References"] = "<price-1@shop.example>"
    reply.set_content("И доставку, пожалуйста.")
    send(stack, reply)

    def mails() -> Any:
        feed = stack.ok("GET", f"/deals/{deal_id}")["feed"]
        lines = [e["item"] for e in feed if e["kind"] == "email"]
        return lines if len(lines) == 2 else None

    lines = wait_for(mails, message="both e-mails in the deal feed")
    assert {line["data"]["message_id"] for line in lines} == {"<price-1@shop.example>",
                                                               "<price-2@shop.example>"}
    [with_file] = [line for line in lines if line["attachments"]]
    assert with_file["attachments"][0]["name"] == "реквизиты.pdf"

    auto = EmailMessage()
    auto["From"] = "robot-e2e@away.example"
    auto["To"] = "sales@crm.example"
    auto["Auto-Submitted"] = "auto-replied"
    auto["Subject"] = "Out of office"
    auto.set_content("I am away")
    send(stack, auto)  # answered only after intake decided: nothing to wait for
    assert all(x["email"] != "robot-e2e@away.example"
               for x in stack.ok("GET", "/leads", params={"status": "all"})["items"])


def test_lead_api_with_a_source_key_is_idempotent_and_names_bad_fields(stack: Any) -> None:
    key = stack.ok("POST", "/leads/keys", user="admin", json={"name": "Партнёр"})["key"]
    url = f"{stack.url}/api/v1/leads"
    data = {"external_id": "p-1", "name": "Иван", "phone": "+7 (903) 111-22-33"}
    first = requests.post(url, json=data, headers={"X-Api-Key": key}, timeout=10)
    again = requests.post(url, json=data, headers={"X-Api-Key": key}, timeout=10)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    bad = requests.post(url, json={"phone": "abc"}, headers={"X-Api-Key": key}, timeout=10)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "phone"
    wrong = requests.post(url, json=data, headers={"X-Api-Key": "lk_nope"}, timeout=10)
    assert wrong.status_code == 403
    spec = requests.get(f"{stack.url}/api/v1/openapi.json", timeout=10).json()
    assert "external_id" in str(spec["paths"]["/api/v1/leads"]["post"])


def test_the_public_form_endpoint_answers_cors_names_bad_fields_and_fools_bots(
        stack: Any) -> None:
    from gateway.rpc import RpcClient

    rpc = RpcClient(stack.env["AMQP_URI"], timeout=10, name="e2e")
    try:
        form = rpc.call("intake", "save_form", {
            "name": "Сайт", "consent_text": "Согласен на обработку данных (152-ФЗ).",
            "min_fill_seconds": 0, "allowed_origins": ["https://shop.example"],
            "fields": [{"name": "phone", "label": "Телефон", "required": True}]})
    finally:
        rpc.close()
    url = f"{stack.url}/f/{form['public_id']}"
    config = requests.get(url, headers={"Origin": "https://shop.example"}, timeout=10)
    assert config.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert requests.get(url, headers={"Origin": "https://evil.example"}, timeout=10
                        ).headers.get("Access-Control-Allow-Origin") is None
    token = config.json()["token"]
    no_consent = requests.post(f"{url}/submit", json={"token": token, "phone": "+79160001122"},
                               timeout=10)
    assert no_consent.status_code == 422
    assert no_consent.json()["error"]["field"] == "consent"
    assert "согласия" in no_consent.json()["error"]["message"]
    bot = requests.post(f"{url}/submit", timeout=10, json={
        "token": token, "phone": "+79160001123", "consent": True, "consent_version": 1,
        "website": "spam.example"})
    assert bot.status_code == 200 and bot.json() == {"status": "ok"}
    assert all(x["phone"] != "+79160001123"
               for x in stack.ok("GET", "/leads", params={"status": "all"})["items"])
