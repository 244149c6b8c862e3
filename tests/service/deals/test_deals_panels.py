"""The deal page's panels from the deals service: contacts (D7), orders (D10), the cost
calculator and payment plan (D11), the environment (D12), history; and the board (D2, D3)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.kit.errors import Conflict, ValidationError


def new_deal(deals, directory, name="Поставка", manager=7, client=None, **extra):
    client = client or directory.client("ООО «Ромашка»", [("Пётр", "+79161234567"),
                                                          ("Елена", "+74957654321")])
    return deals.call("deals", "create_deal", {"name": name, "client_id": client["id"],
                                               "manager_id": manager, **extra}, user_id=manager)


def test_deal_contacts_are_copies_that_leave_the_client_alone(deals, directory):
    deal = new_deal(deals, directory)
    client = directory.clients[deal["client_id"]]
    peter, elena = deal["contacts"]
    deals.call("deals", "remove_deal_contact", deal["id"], peter["contact_id"], user_id=7)
    after = deals.call("deals", "get_deal", deal["id"])["contacts"]
    assert [(c["name"], c["is_main"]) for c in after] == [("Елена", True)]  # main moves on
    assert len(client["contacts"]) == 2 and directory.added == []

    added = deals.call("deals", "add_deal_contact", deal["id"],
                       {"name": "Ольга", "phones": ["+79030000000"]}, user_id=7)
    assert directory.added[0][1]["name"] == "Ольга"
    assert added["contact_id"] == directory.added[0][1]["id"]
    deals.call("deals", "add_deal_contact", deal["id"], {"contact_id": peter["contact_id"]},
               user_id=7)
    deals.call("deals", "set_main_contact", deal["id"], added["contact_id"], user_id=7)
    final = deals.call("deals", "get_deal", deal["id"])["contacts"]
    assert {c["name"]: c["is_main"] for c in final} == {"Елена": False, "Ольга": True,
                                                        "Пётр": False}
    with pytest.raises(ValidationError) as twice:
        deals.call("deals", "add_deal_contact", deal["id"], {"contact_id": peter["contact_id"]},
                   user_id=7)
    assert twice.value.field == "contact_id"
    history = deals.call("deals", "deal_history", deal["id"])
    assert {h["field"] for h in history} >= {"contact_removed", "contact_added", "main_contact"}


def test_an_order_has_a_number_lines_and_a_total(deals, directory, spy):
    events = spy("deals", "order_created")
    deal = new_deal(deals, directory)
    order = deals.call("deals", "create_order", deal["id"], {"order_date": "2026-11-20", "lines": [
        {"name": "Станок", "quantity": "2", "unit_price": "1000.00", "discount": "10"},
        {"name": "Монтаж", "kind": "service", "quantity": "1", "unit_price": "333.33"}]},
        user_id=7)
    assert order["number"].startswith("2026-") and order["amount"] == "2133.33"
    assert [line["amount"] for line in order["lines"]] == ["1800.00", "333.33"]
    assert events.wait_for("order_created")[0]["data"]["number"] == order["number"]
    second = deals.call("deals", "create_order", deal["id"], {"lines": [
        {"name": "Запчасть", "unit_price": "10"}]}, user_id=7)
    assert second["number"] != order["number"]
    shipped = deals.call("deals", "change_order_status", order["id"], "shipped", user_id=7,
                         version=order["version"])
    assert shipped["status"] == "shipped"
    with pytest.raises(Conflict):
        deals.call("deals", "change_order_status", order["id"], "done", user_id=7,
                   version=order["version"])
    assert [o["id"] for o in deals.call("deals", "list_orders", deal["id"])] == \
        [second["id"], order["id"]]


def test_order_input_errors_name_the_line_and_field(deals, directory):
    deal = new_deal(deals, directory)
    for data, field in (({"lines": []}, "lines"),
                        ({"lines": [{"name": "X", "unit_price": 10.5}]}, "lines.0.unit_price"),
                        ({"lines": [{"name": "X", "unit_price": "1", "quantity": "0"}]},
                         "lines.0.quantity"),
                        ({"lines": [{"name": "X", "unit_price": "1", "discount": "120"}]},
                         "lines.0.discount"),
                        ({"status": "lost", "lines": [{"name": "X", "unit_price": "1"}]},
                         "status")):
        with pytest.raises(ValidationError) as refused:
            deals.call("deals", "create_order", deal["id"], data, user_id=7)
        assert refused.value.field == field
    assert deals.call("deals", "list_orders", deal["id"]) == []


def test_a_saved_calculation_sets_the_expected_amount_and_seeds_the_plan_once(
        deals, directory):
    deal = new_deal(deals, directory)
    calc = deals.call("deals", "save_calculation", deal["id"], [
        {"name": "Лицензия", "quantity": "3", "unit_price": "333.33"},
        {"name": "Внедрение", "kind": "service", "unit_price": "1000.01", "discount": "0"}],
        user_id=7)
    assert calc["total"] == "2000.00"
    again = deals.call("deals", "get_deal", deal["id"])
    assert again["expected_amount"] == "2000.00" and again["amount"] == "2000.00"
    plan = deals.call("deals", "create_payment_plan", deal["id"],
                      {"parts": 3, "first_due_date": "2026-01-31"}, user_id=7)
    assert [(p["amount"], p["due_date"]) for p in plan] == [
        ("666.66", "2026-01-31"), ("666.66", "2026-02-28"), ("666.68", "2026-03-31")]
    with pytest.raises(Conflict):
        deals.call("deals", "create_payment_plan", deal["id"], {"parts": 1}, user_id=7)
    assert len(directory.planned) == 3


def test_the_environment_lists_competitors_and_partners(deals, directory):
    deal = new_deal(deals, directory)
    rival = directory.client("ООО «Конкурент»")
    party = deals.call("deals", "add_party", deal["id"], {"role": "competitor",
                                                          "client_id": rival["id"],
                                                          "note": "демпингует"}, user_id=7)
    assert party["name"] == "ООО «Конкурент»"
    deals.call("deals", "add_party", deal["id"], {"role": "influencer", "name": "Главный инженер"},
               user_id=7)
    with pytest.raises(ValidationError) as refused:
        deals.call("deals", "add_party", deal["id"], {"role": "friend", "name": "X"}, user_id=7)
    assert refused.value.field == "role"
    deals.call("deals", "remove_party", deal["id"], party["id"], user_id=7)
    page = deals.call("deals", "deal_page", deal["id"])
    assert [(p["role"], p["name"]) for p in page["parties"]] == [("influencer", "Главный инженер")]


def test_the_board_counts_sums_and_pages_each_column(deals, directory):
    client = directory.client("ООО «Ромашка»")
    made = [new_deal(deals, directory, name=f"Сделка {i}", client=client,
                     expected_amount=f"{i}00.50") for i in range(1, 6)]
    deals.call("deals", "change_status", made[0]["id"], "proposal", user_id=7)
    board = deals.call("deals", "board", {"manager_id": 7}, per_column=2)
    columns = {c["status"]["code"]: c for c in board["columns"]}
    assert (columns["new"]["count"], columns["new"]["amount"]) == (4, "1402.00")
    assert [d["name"] for d in columns["new"]["deals"]] == ["Сделка 5", "Сделка 4"]
    assert (columns["proposal"]["count"], columns["proposal"]["next_after"]) == (1, None)
    rest = deals.call("deals", "board_column", "new", {"manager_id": 7},
                      after=columns["new"]["next_after"], limit=2)
    assert [d["name"] for d in rest["deals"]] == ["Сделка 3", "Сделка 2"]
    assert rest["next_after"] is None
    assert board["total"] == {"count": 5, "amount": "1502.50"}
    assert deals.call("deals", "board", {"manager_id": 8})["total"]["count"] == 0


def test_a_text_filtered_board_counts_sums_and_pages_only_the_matching_deals(deals,
                                                                            directory):
    client = directory.client("ООО «Ромашка»")
    other = directory.client("АО «Северный ветер»")
    made = [new_deal(deals, directory, name=f"Поставка {i}", client=client,
                     expected_amount=f"{i}00.50") for i in range(1, 5)]
    new_deal(deals, directory, name="Монтаж", client=other, expected_amount="999")
    deals.call("deals", "change_status", made[0]["id"], "proposal", user_id=7)
    board = deals.call("deals", "board", {"manager_id": 7, "q": "поставка"}, per_column=2)
    columns = {c["status"]["code"]: c for c in board["columns"]}
    assert (columns["new"]["count"], columns["new"]["amount"]) == (3, "901.50")
    assert [d["name"] for d in columns["new"]["deals"]] == ["Поставка 4", "Поставка 3"]
    assert columns["new"]["next_after"] == made[2]["id"]
    assert [d["id"] for d in columns["proposal"]["deals"]] == [made[0]["id"]]
    assert columns["proposal"]["next_after"] is None and columns["won"]["count"] == 0
    assert board["total"] == {"count": 4, "amount": "1002.00"}
    by_client = deals.call("deals", "board", {"client": "северн"})
    assert by_client["total"] == {"count": 1, "amount": "999.00"}
    only = deals.call("deals", "board", {"q": "поставка", "status": "proposal"})
    assert [c["status"]["code"] for c in only["columns"]] == ["proposal"]
    assert only["total"]["count"] == 1
    assert deals.call("deals", "board", {"q": "нет такой"})["total"]["count"] == 0


def test_every_filter_narrows_the_list(deals, directory):
    client = directory.client("ООО «Ромашка»")
    other = directory.client("АО «Северный ветер»")
    cheap = new_deal(deals, directory, name="Запчасти", client=client, expected_amount="10")
    dear = new_deal(deals, directory, name="Линия", client=other, expected_amount="5000",
                    manager=8)
    deals.call("deals", "create_reminder", dear["id"], {
        "text": "X", "due_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}, user_id=8)
    # periods are days in the business's time zone (TIMEZONE, default Moscow)
    today = datetime.now(ZoneInfo("Europe/Moscow")).date().isoformat()

    def ids(**filters):
        return [d["id"] for d in deals.call("deals", "search_deals", filters)["items"]]

    assert ids() == [dear["id"], cheap["id"]]
    assert ids(manager_id=8) == [dear["id"]]
    assert ids(q="северн") == [dear["id"]] and ids(q="запч") == [cheap["id"]]
    assert ids(q="100%") == []
    assert ids(amount_min="100") == [dear["id"]] and ids(amount_max="100") == [cheap["id"]]
    assert ids(has_task="yes") == [dear["id"]] and ids(has_task="no") == [cheap["id"]]
    assert ids(client_id=client["id"]) == [cheap["id"]]
    assert ids(status="new") == [dear["id"], cheap["id"]] and ids(status="won") == []
    assert ids(created_from=today, created_to=today) == [dear["id"], cheap["id"]]
    assert ids(closed_from=today) == []
    page = deals.call("deals", "search_deals", {}, limit=1)
    assert page["next_after"] == dear["id"]
    for filters, field in (({"amount_min": "abc"}, "amount_min"),
                           ({"created_from": "вчера"}, "created_from"),
                           ({"status": "nope"}, "status"), ({"has_task": "maybe"}, "has_task")):
        with pytest.raises(ValidationError) as refused:
            deals.call("deals", "search_deals", filters)
        assert refused.value.field == field


def test_column_totals_stay_exact_through_moves_reassignments_and_budgets(deals, directory,
                                                                         publish):
    client = directory.client("ООО «Итоги»")
    a = new_deal(deals, directory, name="A", client=client, expected_amount="100.00")
    b = new_deal(deals, directory, name="B", client=client, expected_amount="50.00", manager=8)
    deals.call("deals", "change_status", a["id"], "proposal", user_id=7)
    deals.call("deals", "update_deal", b["id"], {"manager_id": 7}, user_id=7)
    publish("payments", "budget_changed", {"deal_id": a["id"], "budget": "70.00", "paid": "0",
                                           "outstanding": "70.00", "currency": "RUB",
                                           "revision": 1, "user_id": 7})

    def columns(filters):
        return {c["status"]["code"]: (c["count"], c["amount"])
                for c in deals.call("deals", "board", filters)["columns"] if c["count"]}

    from tests.support import infra
    infra.wait_until(lambda: columns({"manager_id": 7}).get("proposal") == (1, "70.00"),
                     message="the budget in the column total")
    # the kept totals (manager only) agree with counting the deals (any other filter)
    for manager in (7, 8, None):
        kept = columns({"manager_id": manager})
        assert kept == columns({"manager_id": manager, "amount_min": "0"})
    assert columns({"manager_id": 7}) == {"new": (1, "50.00"), "proposal": (1, "70.00")}
    assert columns({"manager_id": 8}) == {}


def test_the_header_search_finds_a_deal_by_number_first_then_by_text_in_one_call(
        deals, directory):
    client = directory.client("ООО «Номер 12»")
    named = new_deal(deals, directory, name="Заказ 12", client=client)
    other = new_deal(deals, directory, name="Поставка", client=directory.client("АО «Иное»"))

    def ids(text, limit=5):
        return [d["id"] for d in deals.call("deals", "find_deals", text, limit=limit)["items"]]

    for typed in (str(other["id"]), f"#{other['id']}", f"№ {other['id']}"):
        assert ids(typed)[0] == other["id"]  # the deal with that number, first
    assert ids(f"№{named['id']}").count(named["id"]) == 1  # once, though its name matches too
    assert named["id"] in ids("12")  # a number is also text: "Заказ 12" matches it
    assert ids("поставк") == [other["id"]]
    assert ids("999999999") == []  # a number that is no deal is no error
    assert ids("заказ", limit=1) == [named["id"]]
    assert deals.call("deals", "find_deals", str(other["id"]))["items"][0]["status"] == "new"
