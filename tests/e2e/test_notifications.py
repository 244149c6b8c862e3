"""Notifications through the running CRM: a payment reaches its manager in the app, by
e-mail, Telegram and SMS as they chose; a manager messages a client's contact; failures are
retried, then shown to an administrator who sends again; a process killed mid-send sends
nothing twice."""
from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.support.notify_standins import CommsStack, comms_stack
from tests.support.stack import Stack, wait_for, web_session

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def comms(pytestconfig: Any) -> CommsStack:
    return comms_stack(pytestconfig)


def deal_with_payment(stack: Stack, name: str, amount: str, user: str = "anna") -> dict:
    client = stack.ok("POST", "/clients", json={"kind": "person", "name": f"Клиент {name}"},
                      user=user)
    deal = stack.ok("POST", "/deals", json={"name": name, "client_id": client["id"]}, user=user)
    payment = stack.ok("POST", f"/deals/{deal['id']}/payments", user=user,
                       json={"amount": amount, "due_date": str(date.today())})
    return {"client": client, "deal": deal, "payment": payment}


def mails_to(comms: CommsStack, address: str, subject_part: str) -> list:
    return [m for m in comms.smtp.messages
            if m["To"] == address and subject_part in str(m["Subject"])]


def test_a_payment_reaches_its_manager_in_the_app_by_email_telegram_and_sms(comms):
    stack = comms.stack
    profile = stack.ok("PUT", "/notifications/profile", user="ivan", json={
        "email": "ivan@crm.test", "phone": "+7 916 000-00-07",
        "preferences": {"payment_received": ["app", "email", "telegram", "sms"]}})
    assert profile["preferences"]["payment_received"] == ["app", "email", "telegram", "sms"]
    code = stack.ok("POST", "/notifications/telegram-code", user="ivan")
    assert code["link"] == f"https://t.me/crm_e2e_bot?start={code['code']}"
    comms.telegram.push_message(70007, f"/start {code['code']}")
    wait_for(lambda: stack.ok("GET", "/notifications/profile", user="ivan")["telegram"]
             ["linked"], message="Telegram linked")

    made = deal_with_payment(stack, "Поставка станков", "250000.00", user="ivan")
    stack.ok("POST", f"/payments/{made['payment']['id']}/receipts", user="ivan",
             json={"amount": "250000.00"})

    mail = wait_for(lambda: mails_to(comms, "ivan@crm.test", "250 000,00"),
                    message="the e-mail")[0]
    chat = wait_for(lambda: [m for m in comms.telegram.messages
                             if m.chat_id == 70007 and "250 000,00" in m.text])[0]
    sms = wait_for(lambda: [m for m in comms.sms.messages if m.to == "79160000007"])[0]
    assert "Поставка станков" in mail.get_content()
    assert f"{stack.url}/deals/{made['deal']['id']}" in mail.get_content()
    assert "Поставка станков" in chat.text and "250 000,00" in sms.text
    listed = stack.ok("GET", "/notifications?unread=1", user="ivan")
    item = next(n for n in listed["items"] if n["kind"] == "payment_received")
    assert item["link"] == f"/deals/{made['deal']['id']}" and listed["unread"] >= 1

    web = web_session(stack, "ivan")
    page = web.get(f"{stack.url}/notifications", timeout=10).text
    assert 'id="bell-count"' in page and "Поступила оплата 250 000,00" in page
    opened = web.get(f"{stack.url}/notifications/{item['id']}/open", allow_redirects=False,
                     timeout=10)
    assert opened.headers["Location"].endswith(f"/deals/{made['deal']['id']}")
    assert all(n["id"] != item["id"]
               for n in stack.ok("GET", "/notifications?unread=1", user="ivan")["items"])


def test_a_manager_messages_a_clients_contact_and_it_shows_with_the_client(comms):
    stack = comms.stack
    client = stack.ok("POST", "/clients", json={"kind": "person", "name": "Ольга Письмова"})
    contact = stack.ok("POST", f"/clients/{client['id']}/contacts",
                       json={"name": "Ольга Письмова", "emails": ["olga@client.test"],
                             "phones": ["+7 903 000-11-22"]})
    sent = stack.ok("POST", f"/clients/{client['id']}/messages", json={
        "contact_id": contact["id"], "channel": "email", "address": "olga@client.test",
        "subject": "Счёт на оплату", "text": "Ольга, счёт во вложении."})
    bad = stack.api("POST", f"/clients/{client['id']}/messages", json={
        "contact_id": contact["id"], "channel": "sms", "address": "12", "text": "x"})

    assert bad.status_code == 422 and bad.json()["error"]["field"] == "address"
    [mail] = wait_for(lambda: mails_to(comms, "olga@client.test", "Счёт на оплату"))
    assert mail.get_content().strip() == "Ольга, счёт во вложении."
    listed = wait_for(lambda: [m for m in stack.ok("GET", f"/clients/{client['id']}/messages")
                               if m["status"] == "sent"])
    assert [m["id"] for m in listed] == [sent["id"]] and listed[0]["user_id"] is not None
    assert stack.api("GET", f"/clients/{client['id']}/messages", user="buh").status_code == 200


def test_a_failing_delivery_is_retried_then_failed_and_an_admin_sends_it_again(comms):
    stack = comms.stack
    client = stack.ok("POST", "/clients", json={"kind": "person", "name": "Пётр Неудачин"})
    contact = stack.ok("POST", f"/clients/{client['id']}/contacts",
                       json={"name": "Пётр", "phones": ["+7 903 000-33-44"]})
    comms.smtp.reject_next(3)  # every one of the three tries
    message = stack.ok("POST", f"/clients/{client['id']}/messages", json={
        "contact_id": contact["id"], "channel": "email", "address": "petr@client.test",
        "subject": "Напоминание об оплате", "text": "Добрый день!"})
    failed = wait_for(lambda: [m for m in stack.ok("GET", f"/clients/{client['id']}/messages")
                               if m["status"] == "failed"], message="the failed delivery")[0]
    assert failed["id"] == message["id"] and "451" in failed["error"]

    assert stack.api("GET", "/notifications/deliveries?status=failed").status_code == 403
    log = stack.ok("GET", "/notifications/deliveries?status=failed", user="admin")
    delivery = next(d for d in log["items"] if d["id"] == message["delivery_id"])
    assert delivery["attempts"] == 3 and delivery["address"] == "petr@client.test"
    detail = stack.ok("GET", f"/notifications/deliveries/{delivery['id']}", user="admin")
    assert [a["outcome"] for a in detail["log"]] == ["retryable"] * 3

    stack.ok("POST", f"/notifications/deliveries/{delivery['id']}/retry", user="admin")
    wait_for(lambda: mails_to(comms, "petr@client.test", "Напоминание об оплате"))
    wait_for(lambda: stack.ok("GET", f"/notifications/deliveries/{delivery['id']}",
                              user="admin")["status"] == "sent")
    web = web_session(stack, "admin")
    page = web.get(f"{stack.url}/notifications/deliveries?status=sent", timeout=10).text
    assert f'id="delivery-{delivery["id"]}"' in page


def test_a_notifications_process_killed_mid_send_sends_the_email_once(comms):
    stack = comms.stack
    client = stack.ok("POST", "/clients", json={"kind": "person", "name": "Мария Сбой"})
    contact = stack.ok("POST", f"/clients/{client['id']}/contacts",
                       json={"name": "Мария", "phones": ["+7 903 000-55-66"]})
    comms.smtp.hang_next(1)
    message = stack.ok("POST", f"/clients/{client['id']}/messages", json={
        "contact_id": contact["id"], "channel": "email", "address": "maria@client.test",
        "subject": "Договор", "text": "Мария, договор готов."})
    wait_for(lambda: stack.ok("GET", f"/notifications/deliveries/{message['delivery_id']}",
                              user="admin")["status"] == "sending", timeout=5)
    stack.kill("notifications")  # SIGKILL while the SMTP server holds the message
    stack.start("notifications")
    stack.wait_healthy()

    delivery = wait_for(lambda: (d := stack.ok(
        "GET", f"/notifications/deliveries/{message['delivery_id']}", user="admin"))
        ["status"] == "sent" and d, timeout=20, message="the delivery after the restart")
    [mail] = mails_to(comms, "maria@client.test", "Договор")
    assert mail["Message-ID"] == delivery["provider_id"]
    assert [a["outcome"] for a in delivery["log"]] == ["interrupted", "ok"]
