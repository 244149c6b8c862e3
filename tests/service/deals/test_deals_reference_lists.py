"""Statuses, loss reasons and deal types are reference lists an administrator edits
(D4, D5): renaming or reordering never loses a deal, a status in use is never deleted."""
from __future__ import annotations

import pytest

from services.kit.errors import ValidationError


def test_renaming_and_reordering_statuses_keeps_every_deal_in_its_column(deals, directory):
    client = directory.client("ООО «Альфа»")
    deal = deals.call("deals", "create_deal", {"name": "A", "client_id": client["id"],
                                               "status": "proposal"}, user_id=1)
    proposal = deal["status"]
    deals.call("deals", "save_status", {"id": proposal["id"], "name": "КП отправлено",
                                        "color": "#112233", "kind": "open"}, user_id=1)
    ids = [s["id"] for s in deals.call("deals", "list_statuses")]
    reordered = deals.call("deals", "reorder_statuses", list(reversed(ids)), user_id=1)
    assert [s["id"] for s in reordered] == list(reversed(ids))
    again = deals.call("deals", "get_deal", deal["id"])["status"]
    assert (again["id"], again["code"], again["name"]) == (proposal["id"], "proposal",
                                                           "КП отправлено")
    board = deals.call("deals", "board")
    column = next(c for c in board["columns"] if c["status"]["id"] == proposal["id"])
    assert [d["id"] for d in column["deals"]] == [deal["id"]]


def test_a_status_with_deals_or_the_last_of_its_kind_cannot_be_deleted(deals, directory):
    client = directory.client("ООО «Бета»")
    deals.call("deals", "create_deal", {"name": "B", "client_id": client["id"]}, user_id=1)
    statuses = {s["code"]: s for s in deals.call("deals", "list_statuses")}
    with pytest.raises(ValidationError) as in_use:
        deals.call("deals", "delete_status", statuses["new"]["id"], user_id=1)
    assert in_use.value.field == "status"
    with pytest.raises(ValidationError) as mapped:
        deals.call("deals", "delete_status", statuses["won"]["id"], user_id=1)
    assert mapped.value.field == "status"  # the seeded sale process maps a stage to it
    extra = deals.call("deals", "save_status", {"name": "Пауза", "color": "#aaaaaa",
                                                "kind": "open"}, user_id=1)
    assert extra["code"] == f"status_{extra['id']}"
    # one call: the new open column stands before the outcomes
    listed = deals.call("deals", "list_statuses")
    kinds, order = [s["kind"] for s in listed], [s["id"] for s in listed]
    assert kinds[order.index(extra["id"]) + 1] in ("won", "lost")
    assert all(k == "open" for k in kinds[:order.index(extra["id"])])
    outcome = deals.call("deals", "save_status", {"name": "Отказ клиента", "color": "#aa0000",
                                                  "kind": "lost"}, user_id=1)
    assert [s["id"] for s in deals.call("deals", "list_statuses")][-1] == outcome["id"]
    deals.call("deals", "delete_status", outcome["id"], user_id=1)
    deals.call("deals", "delete_status", extra["id"], user_id=1)
    assert extra["id"] not in [s["id"] for s in deals.call("deals", "list_statuses")]


def test_bad_status_input_names_the_field(deals):
    for data, field in (({"name": ""}, "name"), ({"name": "X", "color": "red"}, "color"),
                        ({"name": "X", "kind": "maybe"}, "kind")):
        with pytest.raises(ValidationError) as refused:
            deals.call("deals", "save_status", data, user_id=1)
        assert refused.value.field == field


def test_kind_of_a_status_in_use_cannot_change(deals, directory):
    client = directory.client("ООО «Гамма»")
    deal = deals.call("deals", "create_deal", {"name": "G", "client_id": client["id"]},
                      user_id=1)
    with pytest.raises(ValidationError) as refused:
        deals.call("deals", "save_status", {"id": deal["status"]["id"], "name": "Новая",
                                            "kind": "won"}, user_id=1)
    assert refused.value.field == "kind"


def test_loss_reasons_are_edited_and_retired_not_deleted(deals):
    reason = deals.call("deals", "save_loss_reason", {"name": "Сорван срок"}, user_id=1)
    deals.call("deals", "save_loss_reason", {"id": reason["id"], "name": "Сорван срок",
                                             "active": False}, user_id=1)
    assert reason["id"] not in [r["id"] for r in deals.call("deals", "list_loss_reasons")]
    everything = deals.call("deals", "list_loss_reasons", include_inactive=True)
    assert reason["id"] in [r["id"] for r in everything]


def test_a_deal_type_keeps_its_stages_in_order_with_tasks_rules_and_documents(deals):
    statuses = {s["code"]: s["id"] for s in deals.call("deals", "list_statuses")}
    saved = deals.call("deals", "save_deal_type", {
        "name": "Проект", "simple": False,
        "documents": [{"title": "Регламент", "url": "https://wiki.example/project"}],
        "stages": [
            {"code": "brief", "name": "Бриф", "status_id": statuses["new"],
             "tasks": [{"text": "Заполнить бриф", "assignee": "role:analyst",
                        "due_hours": "8"}],
             "rules": [{"on": "tasks_done", "to_stage": "estimate"}]},
            {"code": "estimate", "name": "Оценка", "status_id": statuses["proposal"]},
            {"code": "done", "name": "Сдан", "status_id": statuses["won"]}]}, user_id=1)
    assert [s["code"] for s in saved["stages"]] == ["brief", "estimate", "done"]
    assert saved["stages"][0]["tasks"][0]["assignee"] == "role:analyst"
    assert saved["documents"][0]["title"] == "Регламент"
    renamed = deals.call("deals", "save_deal_type", {
        "id": saved["id"], "name": "Проект", "simple": False,
        "stages": [{**s, "name": s["name"].upper()} for s in saved["stages"]]}, user_id=1)
    assert [s["id"] for s in renamed["stages"]] == [s["id"] for s in saved["stages"]]


def test_a_rule_pointing_nowhere_or_at_a_loss_is_refused(deals):
    statuses = {s["code"]: s["id"] for s in deals.call("deals", "list_statuses")}
    for rules, field in (([{"on": "fully_paid", "to_stage": "nowhere"}],
                          "stages.0.rules.0.to_stage"),
                         ([{"on": "fully_paid", "to_stage": "gone"}],
                          "stages.0.rules.0.to_stage"),
                         ([{"on": "sunrise", "to_stage": "gone"}], "stages.0.rules.0.on")):
        with pytest.raises(ValidationError) as refused:
            deals.call("deals", "save_deal_type", {"name": "T", "simple": False, "stages": [
                {"code": "a", "name": "A", "status_id": statuses["new"], "rules": rules},
                {"code": "gone", "name": "Отказ", "status_id": statuses["lost"]}]},
                user_id=1)
        assert refused.value.field == field


def test_a_stage_with_deals_in_it_cannot_be_removed(deals, directory):
    sale = next(t for t in deals.call("deals", "list_deal_types") if not t["simple"])
    client = directory.client("ООО «Дельта»")
    deals.call("deals", "create_deal", {"name": "D", "client_id": client["id"],
                                        "type_id": sale["id"]}, user_id=1)
    with pytest.raises(ValidationError) as refused:
        deals.call("deals", "save_deal_type", {"id": sale["id"], "name": sale["name"],
                                               "simple": False, "stages": sale["stages"][1:]},
                   user_id=1)
    assert refused.value.field == "stages"


def test_the_deal_page_leaves_out_the_lists_its_caller_holds_until_one_changes(deals,
                                                                                directory):
    client = directory.client("ООО «Дельта»")
    deal = deals.call("deals", "create_deal", {"name": "D", "client_id": client["id"]},
                      user_id=1)
    full = deals.call("deals", "deal_page", deal["id"])
    revision = full["reference_revision"]
    assert [s["code"] for s in full["statuses"]] == [
        s["code"] for s in deals.call("deals", "list_statuses")]
    assert full["types"] and "loss_reasons" in full
    lean = deals.call("deals", "deal_page", deal["id"], reference_revision=revision)
    assert lean["reference_revision"] == revision
    assert not {"statuses", "types", "loss_reasons"} & set(lean)
    assert lean["id"] == deal["id"] and lean["history"] == full["history"]
    status = full["statuses"][0]
    deals.call("deals", "save_status", {"id": status["id"], "name": "Первичный контакт",
                                        "color": status["color"], "kind": status["kind"]},
               user_id=1)
    renamed = deals.call("deals", "deal_page", deal["id"], reference_revision=revision)
    assert renamed["reference_revision"] > revision
    assert renamed["statuses"][0]["name"] == "Первичный контакт"
    reason = deals.call("deals", "save_loss_reason", {"name": "Дорого"}, user_id=1)
    after_reason = deals.call("deals", "deal_page", deal["id"],
                              reference_revision=renamed["reference_revision"])
    assert after_reason["reference_revision"] > renamed["reference_revision"]
    assert reason["id"] in [r["id"] for r in after_reason["loss_reasons"]]


@pytest.mark.parametrize("method", ["board", "search_deals"])
def test_a_board_page_brings_the_lists_when_asked_as_reference_lists_would(deals, directory,
                                                                            method):
    client = directory.client("ООО «Эпсилон»")
    deals.call("deals", "create_deal", {"name": "E", "client_id": client["id"]}, user_id=1)
    plain = deals.call("deals", method)
    assert "reference" not in plain  # API callers see the page as before
    full = deals.call("deals", method, reference={"revision": None})
    assert full["reference"] == deals.call("deals", "reference_lists")
    assert {k: v for k, v in full.items() if k != "reference"} == plain
    revision = full["reference"]["reference_revision"]
    lean = deals.call("deals", method, reference={"revision": revision})
    assert lean["reference"] == {"reference_revision": revision}
    status = full["reference"]["statuses"][0]
    deals.call("deals", "save_status", {"id": status["id"], "name": "Новый лид",
                                        "color": status["color"], "kind": status["kind"]},
               user_id=1)
    changed = deals.call("deals", method, reference={"revision": revision})["reference"]
    assert changed["reference_revision"] > revision
    assert changed["statuses"][0]["name"] == "Новый лид"
    with pytest.raises(ValidationError) as refused:
        deals.call("deals", method, reference=5)
    assert refused.value.field == "reference"
