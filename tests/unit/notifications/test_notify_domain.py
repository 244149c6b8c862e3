"""Pure notification rules: words, channels, addresses, interrupted sends."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.kit.errors import ValidationError
from services.notifications import domain


def test_a_payment_notice_reads_naturally_in_russian_and_english():
    facts = {"amount": "1234567.5", "currency": "RUB", "received_on": "2026-03-02",
             "deal_id": 7, "deal_name": "Поставка"}
    ru = domain.notice("payment_received", facts)
    assert ru.title == "Поступила оплата 1 234 567,50 ₽"
    assert ru.body == "Сделка «Поставка»: получено 1 234 567,50 ₽ (02.03.2026)."
    assert ru.link == "/deals/7"
    assert domain.notice("payment_received", facts, "en").title == (
        "Payment received: 1 234 567,50 ₽")


def test_missing_facts_never_break_a_notice():
    item = domain.notice("reminder_due", {"text": "Позвонить"})
    assert item.title == "Напоминание: Позвонить" and item.link is None
    with pytest.raises(ValidationError):
        domain.notice("weather", {})


def test_each_channel_gets_its_own_rendering():
    item = domain.notice("deal_assigned", {"deal_id": 3, "deal_name": "Аудит"})
    subject, body = domain.render("email", item, "https://crm.example/")
    assert subject == "Вам передана сделка «Аудит»"
    assert "https://crm.example/deals/3" in body and "https://crm.example/profile" in body
    _, chat = domain.render("telegram", item, "https://crm.example")
    assert chat.endswith("https://crm.example/deals/3")
    long = domain.Notice("reminder_due", "Напоминание", "я" * 1000, None)
    assert len(domain.render("sms", long, "https://crm.example")[1]) == domain.SMS_LIMIT


def test_planned_deliveries_say_why_one_cannot_go():
    planned = domain.plan(["app", "email", "telegram", "sms"],
                          {"email": "a@b.ru", "telegram": None, "sms": "+79160000000"},
                          {"email": True, "telegram": True, "sms": False})
    assert [(p.channel, p.skip_reason) for p in planned] == [
        ("email", None), ("telegram", "Telegram is not linked"),
        ("sms", "channel not configured")]


def test_preferences_keep_a_fixed_channel_order_and_refuse_unknowns():
    assert domain.preferences_from({"reminder_due": ["sms", "app", "sms"]}) == {
        "reminder_due": ["app", "sms"]}
    assert domain.channels_for("payment_overdue", None) == ("app", "email", "telegram")
    with pytest.raises(ValidationError) as refused:
        domain.preferences_from({"reminder_due": ["carrier pigeon"]})
    assert refused.value.field == "preferences.reminder_due"


def test_addresses_are_normalised_or_refused_naming_the_field():
    assert domain.normalise_email(" Petr@Example.COM ") == "Petr@example.com"
    assert domain.normalise_phone("8 (916) 123-45-67") == "+79161234567"
    assert domain.normalise_email("") is None
    for value in ("petr", "a@b", "a b@c.ru", "пётр@почта.рф"):
        with pytest.raises(ValidationError) as refused:
            domain.normalise_email(value)
        assert refused.value.field == "email"
    assert domain.recipient_changes({"email": "", "lang": "en"}) == {"email": None,
                                                                    "lang": "en"}


def test_a_client_message_is_checked_per_channel():
    message = domain.client_message("sms", "8 916 123 45 67", "ignored?", " Привет ")
    assert (message.address, message.text) == ("+79161234567", "Привет")
    assert domain.client_message("telegram", "@crm_channel", "", "x").address == "@crm_channel"
    with pytest.raises(ValidationError) as refused:
        domain.client_message("email", "a@b.ru", "line\nbreak" * 50, "x")
    assert refused.value.field == "subject"


def test_only_email_is_sent_again_after_an_interrupted_send():
    assert domain.after_interruption("email", 1, 6)[0] == "retrying"
    assert domain.after_interruption("email", 6, 6)[0] == "failed"
    assert domain.after_interruption("telegram", 1, 6)[0] == "failed"
    assert domain.after_interruption("sms", 1, 6)[0] == "failed"
    assert domain.idempotency_key("payment_received:1", "user:5", "email") == (
        "payment_received:1|user:5|email")


def test_a_manager_change_is_read_in_every_shape_deals_may_send():
    assert domain.manager_change({"changes": {"manager_id": {"from": 1, "to": 2}}}) == (1, 2)
    assert domain.manager_change({"changes": {"manager_id": [3, 4]}}) == (3, 4)
    assert domain.manager_change({"previous_manager_id": 5, "manager_id": 6,
                                  "changes": {"name": {"from": "a", "to": "b"}}}) == (5, 6)
    assert domain.manager_change({"previous_manager_id": 5, "manager_id": 5,
                                  "changes": {"name": {"from": "a", "to": "b"}}}) == (None, None)


def _telling(chosen, addresses, configured):
    return domain.telling(
        "payment_received", {"amount": "10", "deal_id": 7, "deal_name": "Поставка"},
        user_id=3, source_key="payment_received:1", deal_id=7, lang="ru", chosen=chosen,
        addresses=addresses, configured=configured, public_url="https://crm.test",
        now=datetime(2026, 3, 2, tzinfo=UTC))


def test_telling_writes_the_app_notice_and_a_delivery_per_chosen_channel():
    told = _telling(["app", "email", "sms"], {"email": "a@b.ru", "sms": None},
                    {"email": True, "sms": True, "telegram": False})
    assert told.notice is not None and told.notice["dedup_key"] == "payment_received:1"
    by_channel = {d["channel"]: d for d in told.deliveries}
    assert by_channel["app"]["status"] == "sent"
    assert by_channel["email"]["status"] == "pending"
    assert by_channel["email"]["address"] == "a@b.ru"
    assert "https://crm.test/deals/7" in by_channel["email"]["body"]
    assert by_channel["sms"]["status"] == "skipped"
    assert by_channel["sms"]["last_error"] == "no phone number in the profile"
    assert {d["recipient_key"] for d in told.deliveries} == {"user:3"}
    assert told.pending


def test_telling_without_the_app_has_no_notice_and_nothing_pending_without_addresses():
    told = _telling(["email"], {}, {"email": True})
    assert told.notice is None
    assert [d["status"] for d in told.deliveries] == ["skipped"]
    assert not told.pending


def test_a_notify_request_names_its_wrong_field():
    assert domain.notify_key("new_lead", {}, " k1 ") == "new_lead:k1"
    for args, field in ((("nope", {}, "k"), "kind"), (("new_lead", [], "k"), "facts"),
                        (("new_lead", {}, " "), "key")):
        with pytest.raises(ValidationError) as caught:
            domain.notify_key(*args)
        assert caught.value.field == field
    with pytest.raises(ValidationError):
        domain.notification_ids(["x"])
    assert domain.notification_ids(["1", 2]) == [1, 2]
    with pytest.raises(ValidationError):
        domain.request_id("x" * 65)
    assert domain.request_id("") is None
