"""Deals on a real broker and database: creation, contacts, edits with history, statuses
and processes, events (MISSION D1, D4–D7)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from services.deals.models import Deal, DealHistory
from services.kit.errors import Conflict, ValidationError


def new_deal(deals, directory, **extra):
    client = directory.client("ООО «Ромашка»", [("Пётр", "+79161234567"),
                                                 ("Елена", "+74957654321")])
    return deals.call("deals", "create_deal", {"name": "Поставка", "client_id": client["id"],
                                               **extra}, user_id=7)


def sale_type(deals):
    return next(t for t in deals.call("deals", "list_deal_types") if not t["simple"])


def history(session_of, deal_id):
    with session_of("deals") as db:
        return [(h.field, h.old_value, h.new_value, h.user_id) for h in db.scalars(
            select(DealHistory).where(DealHistory.deal_id == deal_id).order_by(DealHistory.id))]


def test_new_deal_copies_the_clients_contacts_and_is_led_by_its_creator(deals, directory, spy):
    events = spy("deals", "deal_created")
    deal = new_deal(deals, directory)
    assert [(c["name"], c["is_main"]) for c in deal["contacts"]] == [("Пётр", True),
                                                                     ("Елена", False)]
    assert deal["manager_id"] == 7 and deal["client_name"] == "ООО «Ромашка»"
    assert deal["status"]["code"] == "new" and deal["amount"] == "0.00"
    [event] = events.wait_for("deal_created")
    assert event["data"]["deal_id"] == deal["id"] and event["data"]["manager_id"] == 7
    assert event["data"]["client_id"] == deal["client_id"] and event["data"]["status"] == "new"


def test_deal_for_an_unknown_client_is_refused_naming_the_field_and_nothing_is_written(
        deals, session_of):
    with pytest.raises(ValidationError) as refused:
        deals.call("deals", "create_deal", {"name": "X", "client_id": 999}, user_id=1)
    assert refused.value.field == "client_id"
    with pytest.raises(ValidationError) as unnamed:
        deals.call("deals", "create_deal", {"name": " ", "client_id": 5}, user_id=1)
    assert unnamed.value.field == "name"
    with session_of("deals") as db:
        assert db.scalars(select(Deal)).all() == []


def test_every_edited_field_is_in_the_history_and_one_deal_updated_event(
        deals, directory, spy, session_of):
    events = spy("deals", "deal_updated")
    deal = new_deal(deals, directory)
    other = directory.client("АО «Ветер»")
    updated = deals.call("deals", "update_deal", deal["id"],
                         {"name": "Поставка станков", "manager_id": 9,
                          "client_id": other["id"]}, user_id=3, version=deal["version"])
    assert updated["name"] == "Поставка станков" and updated["client_name"] == "АО «Ветер»"
    assert updated["version"] == deal["version"] + 1
    [event] = events.wait_for("deal_updated")
    assert event["data"]["changes"]["manager_id"] == {"from": 7, "to": 9}
    assert event["data"]["previous_manager_id"] == 7 and event["data"]["manager_id"] == 9
    changed = {(f, old, new, user) for f, old, new, user in history(session_of, deal["id"])}
    assert ("name", "Поставка", "Поставка станков", 3) in changed
    assert ("manager_id", "7", "9", 3) in changed
    assert ("client_id", str(deal["client_id"]), str(other["id"]), 3) in changed


def test_a_stale_version_cannot_overwrite_a_newer_change(deals, directory):
    deal = new_deal(deals, directory)
    deals.call("deals", "change_status", deal["id"], "proposal", user_id=1, version=1)
    with pytest.raises(Conflict):
        deals.call("deals", "change_status", deal["id"], "negotiation", user_id=2, version=1)
    with pytest.raises(Conflict):
        deals.call("deals", "update_deal", deal["id"], {"name": "Y"}, user_id=2, version=1)
    assert deals.call("deals", "get_deal", deal["id"])["status"]["code"] == "proposal"


def test_unknown_fields_and_bad_values_are_refused_by_name(deals, directory):
    deal = new_deal(deals, directory)
    for changes, field in (({"colour": "red"}, "colour"), ({"manager_id": "x"}, "manager_id"),
                           ({"expected_amount": "1.001"}, "expected_amount")):
        with pytest.raises(ValidationError) as refused:
            deals.call("deals", "update_deal", deal["id"], changes, user_id=1)
        assert refused.value.field == field


def test_status_change_is_recorded_and_published_with_from_and_to(deals, directory, spy,
                                                                    session_of):
    events = spy("deals")
    deal = new_deal(deals, directory)
    moved = deals.call("deals", "change_status", deal["id"], "won", user_id=4,
                       version=deal["version"])
    assert moved["closed_at"] is not None
    [changed] = events.wait_for("deal_status_changed")
    assert changed["data"] | {"from_status": "new", "to_status": "won", "user_id": 4} == \
        changed["data"]
    assert events.wait_for("deal_won")[0]["data"]["deal_id"] == deal["id"]
    assert ("status", "new", "won", 4) in history(session_of, deal["id"])


def test_a_lost_deal_needs_a_reason_from_the_list(deals, directory, spy):
    events = spy("deals", "deal_lost")
    deal = new_deal(deals, directory)
    with pytest.raises(ValidationError) as refused:
        deals.call("deals", "change_status", deal["id"], "lost", user_id=1)
    assert refused.value.field == "loss_reason_id"
    reason = deals.call("deals", "list_loss_reasons")[0]
    lost = deals.call("deals", "change_status", deal["id"], "lost", user_id=1,
                      loss_reason_id=reason["id"], loss_comment="дорого")
    assert lost["loss_reason_id"] == reason["id"]
    [event] = events.wait_for("deal_lost")
    assert event["data"]["reason"] == reason["name"] and event["data"]["comment"] == "дорого"
    reopened = deals.call("deals", "change_status", deal["id"], "new", user_id=1)
    assert reopened["loss_reason_id"] is None and reopened["closed_at"] is None


def test_a_process_moves_one_stage_forward_at_a_time_and_back_freely(deals, directory):
    deal = new_deal(deals, directory, type_id=sale_type(deals)["id"])
    assert deal["stage"]["code"] == "new"
    with pytest.raises(ValidationError) as skipped:
        deals.call("deals", "change_status", deal["id"], "proposal", user_id=1)
    assert skipped.value.field == "stage" and "Квалификация" in skipped.value.message
    assert deals.call("deals", "get_deal", deal["id"])["status"]["code"] == "new"
    step = deals.call("deals", "change_status", deal["id"], "qualification", user_id=1)
    assert step["stage"]["code"] == "qualification"
    back = deals.call("deals", "change_status", deal["id"], "new", user_id=1)
    assert back["stage"]["code"] == "new"
    reason = deals.call("deals", "list_loss_reasons")[0]
    lost = deals.call("deals", "change_status", deal["id"], "lost", user_id=1,
                      loss_reason_id=reason["id"])
    assert lost["stage"]["code"] == "lost"


def test_a_simple_type_moves_by_hand_to_any_status(deals, directory):
    simple = deals.call("deals", "save_deal_type", {"name": "Разовая услуга", "simple": True},
                        user_id=1)
    deal = new_deal(deals, directory, type_id=simple["id"])
    assert deals.call("deals", "change_status", deal["id"], "contract",
                      user_id=1)["status"]["code"] == "contract"


def test_entering_a_stage_creates_its_tasks_for_the_manager_and_a_role(deals, directory, spy):
    events = spy("deals", "reminder_created")
    deal = new_deal(deals, directory, type_id=sale_type(deals)["id"])
    deals.call("deals", "change_status", deal["id"], "qualification", user_id=1)
    [task] = deals.call("deals", "list_reminders", deal_id=deal["id"])
    assert (task["assignee_id"], task["text"]) == (7, "Выяснить потребность и бюджет")
    assert task["source"] == "stage"
    assert events.wait_for("reminder_created")[0]["data"]["assignee_id"] == 7
    for status in ("proposal", "negotiation", "contract"):
        deals.call("deals", "change_status", deal["id"], status, user_id=1)
    head_tasks = deals.call("deals", "list_reminders", user_id=55, roles=["head"])
    assert [t["text"] for t in head_tasks] == ["Согласовать договор"]
    assert head_tasks[0]["assignee_role"] == "head"


def test_saving_a_type_again_keeps_its_stage_codes_and_codes_can_swap(deals):
    process = sale_type(deals)
    codes = [s["code"] for s in process["stages"]]
    saved = deals.call("deals", "save_deal_type", process, user_id=1)
    again = deals.call("deals", "save_deal_type", saved, user_id=1)
    assert [s["code"] for s in again["stages"]] == codes
    assert not any(c.startswith("~") for c in codes)
    first, second = again["stages"][0], again["stages"][1]
    swapped = {**again, "stages": [{**first, "code": second["code"]},
                                   {**second, "code": first["code"]}, *again["stages"][2:]]}
    for stage in swapped["stages"]:  # rules name stages by code: follow the swap
        stage["rules"] = [{**r, "to_stage": {first["code"]: second["code"],
                                             second["code"]: first["code"]}.get(
                                                 r["to_stage"], r["to_stage"])}
                          for r in stage.get("rules") or []]
    result = deals.call("deals", "save_deal_type", swapped, user_id=1)
    assert [s["code"] for s in result["stages"]][:2] == [codes[1], codes[0]]
    assert [s["id"] for s in result["stages"]][:2] == [first["id"], second["id"]]
