"""Reminders (D9), the feed (D8) and what other services' events do to deals."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.deals.models import Deal, Reminder, inbox
from services.kit.envelope import Envelope
from services.kit.errors import NotFound, ValidationError
from tests.support import infra


def new_deal(deals, directory, contacts=(("Пётр", "+79161234567"),), **extra):
    client = directory.client("ООО «Ромашка»", list(contacts))
    return deals.call("deals", "create_deal", {"name": "Поставка", "client_id": client["id"],
                                               **extra}, user_id=7)


def soon(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def card(deals, deal_id):
    board = deals.call("deals", "board")
    return next(d for c in board["columns"] for d in c["deals"] if d["id"] == deal_id)


def test_a_reminder_sets_the_deals_next_task_and_completing_it_writes_the_feed(
        deals, directory, spy):
    events = spy("deals")
    deal = new_deal(deals, directory)
    assert card(deals, deal["id"])["next_reminder_at"] is None  # the red "No tasks"
    later = deals.call("deals", "create_reminder", deal["id"],
                       {"text": "Позвонить", "due_at": soon(120)}, user_id=7)
    sooner = deals.call("deals", "create_reminder", deal["id"],
                        {"text": "Отправить КП", "due_at": soon(60), "assignee_id": 9},
                        user_id=7)
    assert card(deals, deal["id"])["next_reminder_at"] == sooner["due_at"]
    assert events.wait_for("reminder_created", 2)[1]["data"]["assignee_id"] == 9
    done = deals.call("deals", "complete_reminder", sooner["id"], user_id=9)
    assert done["completed_by"] == 9
    assert card(deals, deal["id"])["next_reminder_at"] == later["due_at"]
    [completed] = events.wait_for("reminder_completed")
    assert completed["data"] | {"reminder_id": sooner["id"], "user_id": 9} == completed["data"]
    feed = deals.call("deals", "deal_page", deal["id"])["feed"]
    assert [(e["kind"], e["text"], e["author_id"]) for e in feed] == \
        [("reminder_done", "Отправить КП", 9)]
    deals.call("deals", "complete_reminder", sooner["id"], user_id=9)  # twice: no new line
    assert len(deals.call("deals", "deal_page", deal["id"])["feed"]) == 1


def test_reminder_input_errors_name_the_field(deals, directory):
    deal = new_deal(deals, directory)
    for data, field in (({"text": "", "due_at": soon(5)}, "text"),
                        ({"text": "X", "due_at": "завтра"}, "due_at"),
                        ({"text": "X", "due_at": soon(5), "assignee_id": "кто"},
                         "assignee_id")):
        with pytest.raises(ValidationError) as refused:
            deals.call("deals", "create_reminder", deal["id"], data, user_id=7)
        assert refused.value.field == field


def test_list_reminders_answers_for_a_client_a_deal_or_a_person(deals, directory):
    first = new_deal(deals, directory)
    second = new_deal(deals, directory)
    a = deals.call("deals", "create_reminder", first["id"], {"text": "A", "due_at": soon(5)},
                   user_id=7)
    b = deals.call("deals", "create_reminder", second["id"],
                   {"text": "B", "due_at": soon(1), "assignee_id": 8}, user_id=7)
    deals.call("deals", "complete_reminder", a["id"], user_id=7)
    by_client = deals.call("deals", "list_reminders", client_id=second["client_id"])
    assert [(r["id"], r["deal_name"]) for r in by_client] == [(b["id"], "Поставка")]
    assert deals.call("deals", "list_reminders", client_id=first["client_id"]) == []
    assert [r["id"] for r in deals.call("deals", "list_reminders", client_id=first["client_id"],
                                        open_only=False)] == [a["id"]]
    assert [r["id"] for r in deals.call("deals", "list_reminders", user_id=8)] == [b["id"]]


def test_each_due_reminder_is_announced_once_with_two_replicas_running(
        deals, directory, spy, start_service, session_of):
    from services.deals.service import DealsService

    start_service(DealsService, REMINDER_TICK_SECONDS=0.05)  # a second replica
    events = spy("deals", "reminder_due")
    deal = new_deal(deals, directory)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    made = [deals.call("deals", "create_reminder", deal["id"],
                       {"text": f"#{i}", "due_at": past}, user_id=7)["id"] for i in range(30)]
    deals.call("deals", "create_reminder", deal["id"], {"text": "later", "due_at": soon(60)},
               user_id=7)
    announced = events.wait_for("reminder_due", 30)

    def all_marked() -> bool:
        with session_of("deals") as db:
            return not db.scalars(select(Reminder.id).where(
                Reminder.due_emitted_at.is_(None), Reminder.due_at < datetime.now(UTC))).all()

    infra.wait_until(all_marked, message="every due reminder claimed")
    # one more due reminder: once it is announced, later ticks have run and added nothing
    sentinel = deals.call("deals", "create_reminder", deal["id"],
                          {"text": "sentinel", "due_at": past}, user_id=7)["id"]
    events.wait_for("reminder_due", 31)
    assert sorted(e["data"]["reminder_id"] for e in events.events) == sorted([*made, sentinel])
    assert announced[0]["data"]["deal_name"] == "Поставка"


def test_a_comment_keeps_its_files_and_only_its_deal_serves_them(deals, directory, spy):
    events = spy("deals", "comment_added")
    deal = new_deal(deals, directory)
    other = new_deal(deals, directory)
    picture = {"key": "a" * 32, "name": "схема.png", "size": 2048, "content_type": "image/png"}
    comment = deals.call("deals", "add_comment", deal["id"], "Смотрите схему", [picture],
                         user_id=7)
    assert comment["attachments"] == [picture]
    assert events.wait_for("comment_added")[0]["data"]["comment_id"] == comment["id"]
    assert deals.call("deals", "attachment", deal["id"], "a" * 32)["name"] == "схема.png"
    with pytest.raises(NotFound):
        deals.call("deals", "attachment", other["id"], "a" * 32)
    with pytest.raises(ValidationError) as empty:
        deals.call("deals", "add_comment", deal["id"], "  ", [], user_id=7)
    assert empty.value.field == "text"
    with pytest.raises(ValidationError) as forged:
        deals.call("deals", "add_comment", deal["id"], "x", [{**picture, "key": "../etc"}],
                   user_id=7)
    assert forged.value.field == "attachments.0.key"


def handled(session_of, handler: str) -> int:
    with session_of("deals") as db:
        return len(db.execute(select(inbox.c.event_id).where(
            inbox.c.handler == f"deals.{handler}")).all())


def test_a_missed_call_from_a_contact_asks_the_manager_to_call_back_once(
        deals, directory, publish, spy, session_of):
    events = spy("deals", "reminder_created")
    deal = new_deal(deals, directory)
    contact_id = deal["contacts"][0]["contact_id"]
    call = {"id": 501, "direction": "inbound", "outcome": "missed", "contact_id": contact_id,
            "client_id": deal["client_id"], "deal_ids": [deal["id"]],
            "other_number": "8 916 123-45-67", "other_e164": "+79161234567",
            "started_at": datetime.now(UTC).isoformat(), "ended_at": datetime.now(UTC).isoformat()}
    answered = {**call, "id": 502, "outcome": "answered"}
    envelope = Envelope.new("call_finished", call).to_dict()
    publish("telephony", "call_finished", {}, envelope)
    publish("telephony", "call_finished", {}, envelope)  # redelivered
    publish("telephony", "call_finished", answered)
    publish("telephony", "call_finished", call)  # the same call again, another event id
    infra.wait_until(lambda: handled(session_of, "on_call_finished") == 3,
                     message="three distinct call events handled")
    [created] = events.wait_for("reminder_created")
    assert created["data"]["assignee_id"] == 7 and created["data"]["source"] == "call"
    [task] = deals.call("deals", "list_reminders", deal_id=deal["id"])
    assert task["text"].startswith("Перезвонить: +79161234567")


def test_payments_events_update_the_budget_and_the_feed_once(deals, directory, publish,
                                                              session_of):
    deal = new_deal(deals, directory, expected_amount="900.00")
    assert deal["amount"] == "900.00"
    budget = {"deal_id": deal["id"], "budget": "1000.00", "paid": "400.00",
              "outstanding": "600.00", "currency": "RUB", "revision": 2, "user_id": 3}
    publish("payments", "budget_changed", budget)
    publish("payments", "budget_changed", {**budget, "budget": "5.00", "revision": 1})  # late
    receipt = {"receipt_id": 77, "payment_id": 5, "deal_id": deal["id"], "amount": "400.00",
               "currency": "RUB", "received_on": "2026-11-20", "source": "bank", "user_id": 3}
    envelope = Envelope.new("payment_received", receipt).to_dict()
    publish("payments", "payment_received", {}, envelope)
    publish("payments", "payment_received", {}, envelope)
    infra.wait_until(lambda: deals.call("deals", "deal_page", deal["id"])["feed"],
                     message="the receipt in the feed")
    page = deals.call("deals", "deal_page", deal["id"])
    assert (page["amount"], page["budget"], page["paid"], page["outstanding"]) == \
        ("1000.00", "1000.00", "400.00", "600.00")
    assert [(e["kind"], e["data"]["receipt_id"]) for e in page["feed"]] == [("receipt", 77)]
    assert page["expected_amount"] == "900.00"


def test_a_burst_of_receipts_puts_each_in_its_deals_feed_once(
        deals, directory, publish, session_of):
    # a reconciled statement's receipts come by the hundred, for many deals, with the
    # odd repeat; one names a deal this service does not have
    first, second = new_deal(deals, directory), new_deal(deals, directory)
    receipts = [Envelope.new("payment_received", {
        "receipt_id": 500 + n, "payment_id": n, "deal_id": deal["id"], "amount": f"{n}.00",
        "currency": "RUB", "received_on": "2026-11-20", "source": "bank"}).to_dict()
        for n, deal in enumerate([first, second] * 20)]
    unknown = Envelope.new("payment_received", {
        "receipt_id": 999, "payment_id": 999, "deal_id": 987_654_321, "amount": "1.00",
        "currency": "RUB", "received_on": "2026-11-20", "source": "bank"}).to_dict()
    for body in [*receipts[:30], receipts[3], unknown, *receipts[30:]]:
        publish("payments", "payment_received", {}, body)
    infra.wait_until(lambda: handled(session_of, "on_payment_received") == 41,
                     message="every receipt handled once, the unknown deal's refused")
    for n, deal in enumerate((first, second)):
        feed = deals.call("deals", "deal_page", deal["id"])["feed"]
        assert sorted(e["data"]["receipt_id"] for e in feed if e["kind"] == "receipt") == \
            list(range(500 + n, 540, 2))
    with session_of("deals") as db:
        rejected = db.execute(select(inbox.c.rejected).where(
            inbox.c.handler == "deals.on_payment_received",
            inbox.c.event_id == unknown["event_id"])).scalar()
    assert rejected and "987654321" in rejected


def test_a_fully_paid_deal_in_a_stage_with_that_rule_is_won_by_itself(deals, directory,
                                                                       publish, spy):
    events = spy("deals", "deal_won")
    sale = next(t for t in deals.call("deals", "list_deal_types") if not t["simple"])
    deal = new_deal(deals, directory, type_id=sale["id"])
    for status in ("qualification", "proposal", "negotiation", "contract"):
        deal = deals.call("deals", "change_status", deal["id"], status, user_id=7)
    publish("payments", "budget_changed", {"deal_id": deal["id"], "budget": "100.00",
                                           "paid": "100.00", "outstanding": "0.00",
                                           "currency": "RUB", "revision": 1, "user_id": 3})
    [won] = events.wait_for("deal_won")
    assert won["data"]["by_rule"] == "fully_paid" and won["data"]["to_stage"] == "won"
    assert deals.call("deals", "get_deal", deal["id"])["status"]["code"] == "won"


def test_finishing_a_stages_tasks_moves_the_deal_on_when_the_rule_says_so(deals, directory):
    statuses = {s["code"]: s["id"] for s in deals.call("deals", "list_statuses")}
    project = deals.call("deals", "save_deal_type", {"name": "Проект", "simple": False, "stages": [
        {"code": "brief", "name": "Бриф", "status_id": statuses["new"],
         "tasks": [{"text": "Бриф", "due_hours": "1"}, {"text": "Смета", "due_hours": "2"}],
         "rules": [{"on": "tasks_done", "to_stage": "estimate"}]},
        {"code": "estimate", "name": "Оценка", "status_id": statuses["proposal"]}]}, user_id=1)
    deal = new_deal(deals, directory, type_id=project["id"])
    first, second = deals.call("deals", "list_reminders", deal_id=deal["id"])
    deals.call("deals", "complete_reminder", first["id"], user_id=7)
    assert deals.call("deals", "get_deal", deal["id"])["stage"]["code"] == "brief"
    deals.call("deals", "complete_reminder", second["id"], user_id=7)
    moved = deals.call("deals", "get_deal", deal["id"])
    assert (moved["stage"]["code"], moved["status"]["code"]) == ("estimate", "proposal")


def test_each_receipt_of_a_burst_runs_the_rule_of_the_stage_the_deal_is_in(
        deals, directory, session_of, amqp_uri):
    # "a payment moves the deal on" at two stages in a row: two receipts arriving
    # together move it twice, as two arriving apart would; a repeat moves it no further
    statuses = {s["code"]: s["id"] for s in deals.call("deals", "list_statuses")}
    paid_in_parts = deals.call("deals", "save_deal_type", {
        "name": "Предоплата частями", "simple": False, "stages": [
            {"code": "invoiced", "name": "Счёт", "status_id": statuses["proposal"],
             "rules": [{"on": "payment_received", "to_stage": "half"}]},
            {"code": "half", "name": "Половина", "status_id": statuses["negotiation"],
             "rules": [{"on": "payment_received", "to_stage": "paid"}]},
            {"code": "paid", "name": "Оплачено", "status_id": statuses["contract"]}]},
        user_id=1)
    deal = new_deal(deals, directory, type_id=paid_in_parts["id"])
    assert deals.call("deals", "get_deal", deal["id"])["stage"]["code"] == "invoiced"
    first, second = (Envelope.new("payment_received", {
        "receipt_id": 700 + n, "payment_id": 70 + n, "deal_id": deal["id"],
        "amount": "50.00", "currency": "RUB", "received_on": "2026-11-20",
        "source": "bank"}).to_dict() for n in (1, 2))
    infra.publish_events(amqp_uri, "payments", "payment_received",
                         [first, second, first])
    infra.wait_until(lambda: handled(session_of, "on_payment_received") == 2,
                     message="both receipts handled")
    moved = deals.call("deals", "get_deal", deal["id"])
    assert (moved["stage"]["code"], moved["status"]["code"]) == ("paid", "contract")


def test_a_merged_client_s_deals_and_reminders_move_to_the_survivor(
        deals, directory, publish, session_of):
    deal = new_deal(deals, directory)
    deals.call("deals", "create_reminder", deal["id"], {"text": "A", "due_at": soon(5)},
               user_id=7)
    survivor = directory.client("ООО «Ромашка» (основная)")
    publish("clients", "client_merged", {"survivor_id": survivor["id"],
                                         "merged_id": deal["client_id"], "user_id": 2})

    def moved() -> bool:
        with session_of("deals") as db:
            return db.get(Deal, deal["id"]).client_id == survivor["id"]

    infra.wait_until(moved, message="the deal to follow the merge")
    again = deals.call("deals", "get_deal", deal["id"])
    assert again["client_name"] == "ООО «Ромашка» (основная)"
    assert len(deals.call("deals", "list_reminders", client_id=survivor["id"])) == 1


def test_a_clients_first_contact_joins_its_open_deals_without_contacts(
        deals, directory, publish, session_of):
    bare = new_deal(deals, directory, contacts=())
    staffed = new_deal(deals, directory)
    for deal in (bare, staffed):
        publish("clients", "contact_added", {"client_id": deal["client_id"], "contact": {
            "id": 9001 + deal["id"], "client_id": deal["client_id"], "name": "Новый",
            "phones": ["+79990000000"], "emails": []}})
    infra.wait_until(lambda: handled(session_of, "on_contact_added") == 2,
                     message="both contact events handled")
    assert [(c["name"], c["is_main"]) for c in
            deals.call("deals", "get_deal", bare["id"])["contacts"]] == [("Новый", True)]
    assert [c["name"] for c in deals.call("deals", "get_deal", staffed["id"])["contacts"]] == \
        ["Пётр"]
