"""Linking Telegram with a one-time code (one poller per cluster), and messages from a
client's page to a contact by e-mail, Telegram or SMS (N2)."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from services.kit.errors import Conflict, NotFound, ValidationError
from services.notifications.service import NotificationsService
from tests.support.infra import wait_until

ANNA, IVAN = 5, 6


def linked(rpc, user_id: int) -> bool:
    return rpc.call("notifications", "get_profile", user_id)["telegram"]["linked"]


def test_a_user_links_telegram_by_sending_the_code_and_only_one_replica_polls(
        notifications, start_service, provider_config, rpc, telegram, deliveries):
    notifications(with_fakes=False)
    start_service(NotificationsService, **provider_config)  # a second replica
    issued = rpc.call("notifications", "telegram_link_code", ANNA)
    other = rpc.call("notifications", "telegram_link_code", IVAN)["code"]
    assert issued["link"] == f"https://t.me/crm_test_bot?start={issued['code']}"

    telegram.push_message(5005, "/start wrong-code-1")
    telegram.push_message(6006, other, chat_type="group")  # a code in a group is not linked
    telegram.push_message(5005, f"/start {issued['code']}")
    [confirmation] = telegram.wait_for_messages(1)

    assert confirmation.chat_id == 5005 and "Telegram" in confirmation.text
    profile = rpc.call("notifications", "get_profile", ANNA)["telegram"]
    assert profile["linked"] and profile["chat_id"] == "5005" and profile["code"] is None
    assert not linked(rpc, IVAN)
    polls = [r for r in telegram.requests if r.path.endswith("getUpdates")]
    offsets = [int(r.params.get("offset") or 0) for r in polls]
    assert offsets == sorted(offsets)  # one poller: the offsets never go back
    with deliveries.engine.connect() as conn:
        # this test's database only: other tests' replicas hold their own leases
        holders = conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = "
            "current_database())")).scalar()
    assert holders == 1

    rpc.call("notifications", "unlink_telegram", ANNA)
    assert not linked(rpc, ANNA)
    telegram.push_message(5005, f"/start {issued['code']}")  # a used code links nobody
    telegram.push_message(6007, other)
    wait_until(lambda: linked(rpc, IVAN))
    assert not linked(rpc, ANNA)


def test_telegram_codes_need_the_bot_configured(notifications, rpc):
    notifications(with_fakes=False, TELEGRAM_BOT_TOKEN="")
    # a fact of the installation, not an outage: a 409 the caller can act on
    with pytest.raises(Conflict) as exc:
        rpc.call("notifications", "telegram_link_code", ANNA)
    assert exc.value.details["reason"] == "not_configured"


CLIENT = {"id": 3, "name": "ООО «Ромашка»", "contacts": [
    {"id": 31, "client_id": 3, "name": "Пётр Сидоров", "phones": ["+79161234567"],
     "emails": ["petr@romashka.test"]}]}


def test_a_manager_messages_a_contact_by_email_sms_and_telegram(notifications, directory, rpc,
                                                                smtp, sms, telegram):
    _, clients = directory
    clients[3] = CLIENT
    notifications()
    send = rpc.call
    mail = send("notifications", "send_to_contact", ANNA, 3, 31, "email", "petr@romashka.test",
                "Коммерческое предложение", "Добрый день! Направляем предложение.",
                request_id="form-1")
    twice = send("notifications", "send_to_contact", ANNA, 3, 31, "email",
                 "petr@romashka.test", "Коммерческое предложение",
                 "Добрый день! Направляем предложение.", request_id="form-1")
    send("notifications", "send_to_contact", ANNA, 3, 31, "sms", "8 916 123-45-67", "",
         "Перезвоните, пожалуйста")
    send("notifications", "send_to_contact", ANNA, 3, 31, "telegram", "-100123", "Счёт",
         "Счёт отправлен")

    [received] = smtp.wait_for_messages(1)
    [text_message] = sms.wait_for_messages(1)
    [chat] = telegram.wait_for_messages(1)
    assert twice["id"] == mail["id"]  # the double-submitted form sent once
    assert received["Message-ID"] == mail["message_id"] == twice["message_id"]
    assert received["To"] == "petr@romashka.test"
    assert received["Subject"] == "Коммерческое предложение"
    assert received.get_content().strip() == "Добрый день! Направляем предложение."
    assert text_message.to == "79161234567" and chat.chat_id == -100123
    feed = wait_until(lambda: (items := rpc.call("notifications", "list_client_messages", 3))
                      and all(m["status"] == "sent" for m in items) and items)
    assert [(m["channel"], m["contact_name"], m["user_id"]) for m in feed] == [
        ("telegram", "Пётр Сидоров", ANNA), ("sms", "Пётр Сидоров", ANNA),
        ("email", "Пётр Сидоров", ANNA)]
    assert feed[2]["address"] == "petr@romashka.test" and feed[1]["address"] == "+79161234567"


def test_a_message_to_a_contact_is_checked_before_anything_is_sent(notifications, directory,
                                                                   rpc, smtp):
    _, clients = directory
    clients[3] = CLIENT
    notifications()
    cases = [
        (("fax", "x", "s", "t"), "channel"),
        (("email", "not-mail", "s", "t"), "address"),
        (("sms", "12345", "", "t"), "address"),
        (("telegram", "some one", "", "t"), "address"),
        (("email", "a@b.ru", "s", "   "), "text"),
        (("sms", "+79161234567", "", "я" * 400), "text"),
        (("email", "a@b.ru", "s" * 300, "t"), "subject"),
    ]
    for args, field in cases:
        with pytest.raises(ValidationError) as refused:
            rpc.call("notifications", "send_to_contact", ANNA, 3, 31, *args)
        assert refused.value.details["field"] == field, args
    with pytest.raises(NotFound) as missing:
        rpc.call("notifications", "send_to_contact", ANNA, 3, 99, "email", "a@b.ru", "", "t")
    assert missing.value.details["field"] == "contact_id"
    with pytest.raises(NotFound):
        rpc.call("notifications", "send_to_contact", ANNA, 4, 31, "email", "a@b.ru", "", "t")
    assert rpc.call("notifications", "list_client_messages", 3) == []
    assert smtp.messages == []
