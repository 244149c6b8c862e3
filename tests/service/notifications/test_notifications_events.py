"""Events reach the right person over the channels they chose (N1)."""
from __future__ import annotations

import pytest

from services.kit.errors import ValidationError

MANAGER = 5


def profile(rpc, user_id: int = MANAGER, **channels: list[str]) -> None:
    rpc.call("notifications", "set_recipient", user_id,
             {"email": "anna@crm.test", "phone": "8 916 123-45-67", "name": "Анна"})
    if channels:
        rpc.call("notifications", "set_preferences", user_id, channels)


def received(deal_id: int = 10, receipt_id: int = 77) -> dict:
    return {"receipt_id": receipt_id, "payment_id": 3, "deal_id": deal_id,
            "amount": "1500.50", "currency": "RUB", "received_on": "2026-03-02",
            "source": "manual"}


def test_a_payment_reaches_the_deals_manager_in_the_app_by_email_telegram_and_sms(
        notifications, directory, rpc, publish, smtp, telegram, sms, deliveries):
    deals, _ = directory
    deals[10] = {"id": 10, "name": "Поставка", "manager_id": MANAGER}
    notifications()
    profile(rpc, payment_received=["app", "email", "telegram", "sms"])
    linked = rpc.call("notifications", "get_profile", MANAGER)
    assert linked["telegram"]["linked"] is False
    # link Telegram the way a person does: code from the profile, sent to the bot
    code = rpc.call("notifications", "telegram_link_code", MANAGER)["code"]
    telegram.push_message(4242, f"/start {code}")
    telegram.wait_for_messages(1)  # "Telegram linked"

    publish("payments", "payment_received", received())
    [mail] = smtp.wait_for_messages(1)
    sent = telegram.wait_for_messages(2)[1]
    [text] = sms.wait_for_messages(1)

    assert mail["To"] == "anna@crm.test" and "1 500,50 ₽" in mail["Subject"]
    assert "Поставка" in mail.get_content() and "https://crm.example/deals/10" in mail.get_content()
    assert sent.chat_id == 4242 and "1 500,50 ₽" in sent.text
    assert text.to == "79161234567" and "1 500,50" in text.text
    app = rpc.call("notifications", "list_for_user", MANAGER)
    assert app["unread"] == 1 and app["items"][0]["kind"] == "payment_received"
    assert app["items"][0]["link"] == "/deals/10"
    rows = deliveries.wait("source_key = 'payment_received:77' AND status = 'sent'", 4)
    assert sorted(r.channel for r in rows) == ["app", "email", "sms", "telegram"]
    email = next(r for r in rows if r.channel == "email")
    assert mail["Message-ID"] == email.provider_id
    assert deliveries.log(email.id) == [(1, "ok")]


def test_each_person_gets_only_the_channels_they_chose(notifications, directory, rpc, publish,
                                                       smtp, sms, deliveries):
    deals, _ = directory
    deals[11] = {"id": 11, "name": "Монтаж", "manager_id": MANAGER}
    deals[12] = {"id": 12, "name": "Аудит", "manager_id": 6}
    notifications()
    profile(rpc, payment_received=["sms"])
    rpc.call("notifications", "set_recipient", 6, {"email": "ivan@crm.test"})

    publish("payments", "payment_received", received(deal_id=11, receipt_id=1))
    publish("payments", "payment_received", received(deal_id=12, receipt_id=2))
    [text] = sms.wait_for_messages(1)
    [mail] = smtp.wait_for_messages(1)

    assert text.to == "79161234567" and mail["To"] == "ivan@crm.test"
    assert rpc.call("notifications", "list_for_user", MANAGER)["items"] == []
    # defaults for Ivan: app + e-mail + Telegram, and Telegram is not linked: logged skipped
    skipped = deliveries.wait("user_id = 6 AND channel = 'telegram'")[0]
    assert (skipped.status, skipped.last_error) == ("skipped", "Telegram is not linked")
    assert rpc.call("notifications", "unread_count", 6) == 1


def test_reminders_overdue_payments_and_assigned_deals_tell_the_right_person(
        notifications, directory, rpc, publish, smtp):
    deals, _ = directory
    deals[20] = {"id": 20, "name": "Внедрение", "manager_id": 7}
    notifications()
    for user, address in ((5, "anna@crm.test"), (7, "oleg@crm.test"), (8, "kate@crm.test")):
        rpc.call("notifications", "set_recipient", user, {"email": address})

    publish("deals", "reminder_due", {"reminder_id": 1, "deal_id": 20, "client_id": 2,
                                      "assignee_id": 8, "due_at": "2026-03-02T10:00:00+03:00",
                                      "text": "Позвонить клиенту", "deal_name": "Внедрение"})
    publish("payments", "payment_overdue", {"payment_id": 4, "deal_id": 20, "amount": "900.00",
                                            "currency": "RUB", "due_date": "2026-02-27"})
    publish("deals", "deal_created", {"deal_id": 21, "name": "Своя", "client_id": 2,
                                      "manager_id": 5, "status": "new", "user_id": 5})
    publish("deals", "deal_created", {"deal_id": 22, "name": "Чужая", "client_id": 2,
                                      "manager_id": 5, "status": "new", "user_id": 7})
    publish("deals", "deal_updated", {"deal_id": 20, "name": "Внедрение", "user_id": 7,
                                      "manager_id": 8, "previous_manager_id": 7,
                                      "changes": {"manager_id": {"from": 7, "to": 8}}})
    publish("deals", "deal_updated", {"deal_id": 20, "name": "Внедрение", "user_id": 8,
                                      "manager_id": 8, "previous_manager_id": 8,
                                      "changes": {"name": {"from": "x", "to": "Внедрение"}}})
    mails = smtp.wait_for_messages(4)
    by_person = sorted((m["To"], m["Subject"]) for m in mails)

    assert by_person == [
        ("anna@crm.test", "Вам передана сделка «Чужая»"),
        ("kate@crm.test", "Вам передана сделка «Внедрение»"),
        ("kate@crm.test", "Напоминание: Позвонить клиенту"),
        ("oleg@crm.test", "Просрочен платёж 900,00 ₽"),
    ]
    reminder = next(m for m in mails if "Напоминание" in m["Subject"])
    assert "02.03.2026 10:00" in reminder.get_content()


def test_english_speakers_are_told_in_english(notifications, directory, rpc, publish, smtp):
    deals, _ = directory
    deals[30] = {"id": 30, "name": "Rollout", "manager_id": MANAGER}
    notifications()
    rpc.call("notifications", "set_recipient", MANAGER, {"email": "a@crm.test", "lang": "en"})
    publish("payments", "payment_received", received(deal_id=30, receipt_id=9))
    [mail] = smtp.wait_for_messages(1)
    assert mail["Subject"] == "Payment received: 1 500,50 ₽"


def test_profile_input_is_checked_field_by_field(notifications, rpc):
    notifications(with_fakes=False)
    cases = [
        (("set_recipient", MANAGER, {"email": "not-an-address"}), "email"),
        (("set_recipient", MANAGER, {"phone": "12"}), "phone"),
        (("set_recipient", MANAGER, {"lang": "de"}), "lang"),
        (("set_recipient", MANAGER, {"fax": "1"}), "fax"),
        (("set_recipient", "x", {"email": "a@b.ru"}), "user_id"),
        (("set_preferences", MANAGER, {"payment_received": ["pigeon"]}),
         "preferences.payment_received"),
        (("set_preferences", MANAGER, {"weather": ["app"]}), "preferences.weather"),
        (("set_preferences", MANAGER, {"reminder_due": "app"}), "preferences.reminder_due"),
        (("notify_user", MANAGER, "document_signed", {"deal_id": 1}, ""), "key"),
        (("notify_user", MANAGER, "gossip", {}, "k"), "kind"),
    ]
    for (method, *args), field in cases:
        with pytest.raises(ValidationError) as refused:
            rpc.call("notifications", method, *args)
        assert refused.value.details["field"] == field, (method, args)
    saved = rpc.call("notifications", "set_recipient", MANAGER,
                     {"email": "Anna@Почта.РФ", "phone": "+7 (916) 123-45-67"})
    assert (saved["email"], saved["phone"]) == ("Anna@почта.рф", "+79161234567")
    prefs = rpc.call("notifications", "set_preferences", MANAGER,
                     {"reminder_due": ["telegram", "app"]})["preferences"]
    assert prefs["reminder_due"] == ["app", "telegram"]
    assert prefs["payment_received"] == ["app", "email", "telegram"]  # the default


def test_the_hook_for_documents_and_questionnaires_tells_once_per_key(notifications, rpc,
                                                                       smtp, publish):
    notifications(with_fakes=False)
    rpc.call("notifications", "set_recipient", MANAGER, {"email": "anna@crm.test"})
    facts = {"deal_id": 40, "deal_name": "Лизинг", "name": "Договор №12"}
    rpc.call("notifications", "notify_user", MANAGER, "document_signed", facts, "doc-12")
    rpc.call("notifications", "notify_user", MANAGER, "document_signed", facts, "doc-12")
    rpc.call("notifications", "notify_user", MANAGER, "questionnaire_filled",
             {"deal_id": 40, "deal_name": "Лизинг", "name": "Бриф"}, "brief-3")
    mails = smtp.wait_for_messages(2)
    assert sorted(m["Subject"] for m in mails) == [
        "Клиент заполнил анкету «Бриф»", "Клиент подписал документ «Договор №12»"]
    assert rpc.call("notifications", "unread_count", MANAGER) == 2


def test_the_deal_page_lists_only_that_deals_notifications(notifications, directory, rpc,
                                                          publish, deliveries):
    deals, _ = directory
    deals[13] = {"id": 13, "name": "Монтаж", "manager_id": MANAGER}
    deals[14] = {"id": 14, "name": "Аудит", "manager_id": MANAGER}
    notifications()
    profile(rpc, payment_received=["app"])

    publish("payments", "payment_received", received(deal_id=13, receipt_id=3))
    publish("payments", "payment_received", received(deal_id=14, receipt_id=4))
    deliveries.wait(f"user_id = {MANAGER} AND channel = 'app' AND status = 'sent'", 2)

    of_13 = rpc.call("notifications", "list_for_user", MANAGER, unread_only=True, deal_id=13)
    assert [n["deal_id"] for n in of_13["items"]] == [13]
    assert len(rpc.call("notifications", "list_for_user", MANAGER)["items"]) == 2
