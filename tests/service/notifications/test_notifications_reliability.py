"""Every delivery is logged; failures are retried with back-off, then marked failed for an
administrator; nothing is sent twice — not for a repeated event, not across a crash (N3)."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from services.kit.envelope import Envelope
from services.kit.errors import Conflict
from services.notifications.service import NotificationsService
from tests.support.infra import wait_until

MANAGER = 5


def setup_manager(rpc, directory, **channels: list[str]) -> None:
    deals, _ = directory
    for deal_id in range(1, 10):
        deals[deal_id] = {"id": deal_id, "name": f"Сделка {deal_id}", "manager_id": MANAGER}
    rpc.call("notifications", "set_recipient", MANAGER,
             {"email": "anna@crm.test", "phone": "+79161234567"})
    rpc.call("notifications", "set_preferences", MANAGER,
             channels or {"payment_received": ["app", "email"]})


def received(receipt_id: int, deal_id: int = 1) -> dict:
    return {"receipt_id": receipt_id, "payment_id": receipt_id, "deal_id": deal_id,
            "amount": "100.00", "currency": "RUB", "received_on": "2026-03-02",
            "source": "bank"}


def test_an_event_delivered_twice_or_restated_sends_one_email(notifications, directory, rpc,
                                                              publish, smtp, deliveries):
    notifications()
    setup_manager(rpc, directory)
    envelope = Envelope.new("payment_received", received(1))
    publish("payments", "payment_received", {}, envelope=envelope)
    publish("payments", "payment_received", {}, envelope=envelope)  # redelivered
    publish("payments", "payment_received", received(1))  # same receipt, new event id
    publish("payments", "payment_received", received(2))  # the marker
    deliveries.wait("channel = 'email' AND status = 'sent'", 2)
    mails = smtp.wait_for_messages(2)
    assert len(mails) == 2 and len(deliveries.rows("channel = 'email'")) == 2
    assert rpc.call("notifications", "unread_count", MANAGER) == 2


def test_provider_errors_throttling_and_timeouts_are_retried_with_back_off(
        notifications, directory, rpc, publish, smtp, telegram, sms, deliveries):
    notifications()
    setup_manager(rpc, directory, payment_received=["email", "telegram", "sms"])
    code = rpc.call("notifications", "telegram_link_code", MANAGER)["code"]
    telegram.push_message(777, code)
    telegram.wait_for_messages(1)
    smtp.reject_next(1)             # 451 try later
    telegram.fail_next(1, 502, only="sendMessage")  # a gateway error, then
    telegram.throttle_next(1, retry_after=1, only="sendMessage")  # 429 with retry_after
    sms.hang_next(1)                # no answer: the read times out

    publish("payments", "payment_received", received(3))
    rows = deliveries.wait("source_key = 'payment_received:3' AND status = 'sent'", 3,
                           timeout=15)
    by_channel = {r.channel: r for r in rows}

    assert len(smtp.wait_for_messages(1)) == 1
    assert len(sms.wait_for_messages(1)) == 1
    assert len(telegram.wait_for_messages(2)) == 2  # the link confirmation + this one
    assert deliveries.log(by_channel["email"].id) == [(1, "retryable"), (2, "ok")]
    assert deliveries.log(by_channel["sms"].id) == [(1, "retryable"), (2, "ok")]
    assert deliveries.log(by_channel["telegram"].id) == [(1, "retryable"), (2, "retryable"),
                                                          (3, "ok")]
    with deliveries.engine.connect() as conn:
        starts = [r[0] for r in conn.execute(text(
            "SELECT started_at FROM delivery_attempts WHERE delivery_id = :d ORDER BY id"),
            {"d": by_channel["telegram"].id})]
    assert (starts[2] - starts[1]).total_seconds() >= 1.0  # the 429's retry_after held


def test_after_the_last_try_a_delivery_is_failed_and_an_admin_can_send_it_again(
        notifications, directory, rpc, publish, smtp, deliveries):
    notifications()
    setup_manager(rpc, directory)
    smtp.reject_next(3)  # every try of the three
    publish("payments", "payment_received", received(4))
    [failed] = deliveries.wait("channel = 'email' AND status = 'failed'")
    assert failed.attempts == 3 and "gave up after 3 tries" in failed.last_error
    assert smtp.messages == []
    log = rpc.call("notifications", "list_deliveries", status="failed")
    assert [d["id"] for d in log["items"]] == [failed.id] and log["counts"]["failed"] == 1

    again = rpc.call("notifications", "retry_delivery", failed.id, user_id=1)
    assert again["status"] == "pending"
    assert len(smtp.wait_for_messages(1)) == 1
    detail = wait_until(lambda: (d := rpc.call("notifications", "get_delivery", failed.id))
                        ["status"] == "sent" and d)
    assert [(e["attempt"], e["outcome"]) for e in detail["log"]] == [
        (1, "retryable"), (2, "retryable"), (3, "retryable"), (3, "manual"), (1, "ok")]
    with pytest.raises(Conflict):
        rpc.call("notifications", "retry_delivery", failed.id)


def test_a_refused_recipient_fails_at_once_without_retries(notifications, directory, rpc,
                                                           publish, telegram, deliveries):
    notifications()
    setup_manager(rpc, directory, payment_received=["telegram"])
    code = rpc.call("notifications", "telegram_link_code", MANAGER)["code"]
    telegram.push_message(778, code)
    telegram.wait_for_messages(1)
    telegram.block_next(1, only="sendMessage")  # 403: the user blocked the bot
    publish("payments", "payment_received", received(5))
    [failed] = deliveries.wait("channel = 'telegram' AND status = 'failed' "
                               "AND kind = 'payment_received'")
    assert failed.attempts == 1 and "blocked" in failed.last_error


def test_a_crash_mid_send_repeats_an_email_with_its_message_id_and_never_a_telegram(
        notifications, start_service, directory, rpc, publish, smtp, telegram, deliveries,
        provider_config):
    first = notifications(SMTP_TIMEOUT=30, HTTP_READ_TIMEOUT=30)  # it hangs until killed
    setup_manager(rpc, directory, payment_received=["email", "telegram"])
    code = rpc.call("notifications", "telegram_link_code", MANAGER)["code"]
    telegram.push_message(779, code)
    telegram.wait_for_messages(1)
    smtp.hang_next(1)
    telegram.hang_next(1, only="sendMessage")
    publish("payments", "payment_received", received(6))
    deliveries.wait("source_key = 'payment_received:6' AND status = 'sending'", 2)
    first.kill()  # the process dies while both providers hold the request
    start_service(NotificationsService, **provider_config)  # restarted
    email = deliveries.wait("source_key = 'payment_received:6' AND channel = 'email' "
                            "AND status = 'sent'")[0]
    chat = deliveries.wait("source_key = 'payment_received:6' AND channel = 'telegram' "
                           "AND status = 'failed'")[0]
    mails = smtp.wait_for_messages(1)
    assert {m["Message-ID"] for m in mails} == {email.provider_id}
    log = deliveries.log(email.id)
    # the repeat after the crash; on a loaded machine that repeat may itself time out and
    # be repeated again (retryable), always with the same Message-ID
    assert log[0] == (1, "interrupted") and log[-1][1] == "ok" and len(log) >= 2
    assert all(outcome == "retryable" for _, outcome in log[1:-1])
    assert "may or may not have arrived" in chat.last_error
    assert [m.chat_id for m in telegram.messages] == [779]  # only "linked", nothing twice
    rpc.call("notifications", "retry_delivery", chat.id)
    assert [m.chat_id for m in telegram.wait_for_messages(2)] == [779, 779]


def test_events_waiting_in_the_queue_are_applied_together_each_once_and_a_refused_one_alone(
        notifications, start_service, directory, rpc, publish, smtp, deliveries,
        provider_config):
    first = notifications()
    setup_manager(rpc, directory)
    first.kill()  # the queue stays: what is published now waits for the next process
    repeated = Envelope.new("payment_received", received(21))
    publish("payments", "payment_received", {}, envelope=repeated)
    for receipt in range(22, 33):
        publish("payments", "payment_received", received(receipt))
    publish("payments", "payment_received", {}, envelope=repeated)  # the same event again
    publish("payments", "payment_received", received(21))  # restated with a new event id
    refused = publish("payments", "payment_received", received(40, deal_id=99))  # unknown deal
    start_service(NotificationsService, **provider_config)
    sent = deliveries.wait("channel = 'email' AND status = 'sent'", 12, timeout=30)
    assert sorted(d.source_key for d in sent) == [f"payment_received:{n}" for n in range(21, 33)]
    with deliveries.engine.connect() as conn:
        inbox = wait_until(lambda: (rows := conn.execute(text(
            "SELECT event_id::text, rejected FROM inbox "
            "WHERE handler = 'notifications.on_payment_received'")).all()) and len(rows) >= 14
            and rows, message="every event in the inbox")
    assert len(inbox) == 14  # 12 receipts, the restatement and the refused one; no repeat
    assert [r.rejected is not None for r in inbox if r.event_id == refused.event_id] == [True]
    assert sum(r.rejected is not None for r in inbox) == 1
    assert len({m["Message-ID"] for m in smtp.wait_for_messages(12)}) == 12
    assert len(smtp.messages) == 12
    assert len(deliveries.rows("channel = 'app'")) == 12  # one in-app notice per receipt
