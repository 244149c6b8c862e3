"""Clients and contacts on a real broker and database: creation with requisites, automatic
names, contacts, the change history, duplicates and merging (C1–C3, C5, C7, C9)."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from services.clients.models import Client, ClientHistory, outbox
from services.kit.errors import Conflict, NotFound, ValidationError
from tests.support.infra import wait_until
from tests.unit.clients.vectors import REAL_ACCOUNTS, REAL_BANKS, ogrnip_with_remainder

from .conftest import ClientsEnv, inn10, inn12, mobile, tag


def test_clients_created_at_once_without_a_name_get_distinct_numbered_names(
        clients: ClientsEnv, manager: int):
    replies = [clients.rpc.call_async("clients", "create_client",
                                      {"kind": "person", "manager_id": manager},
                                      user_id=manager, lang="en" if i % 2 else "ru")
               for i in range(24)]
    made = [r.result(time.monotonic() + 20) for r in replies]
    numbers = [c["number"] for c in made]
    assert len(set(numbers)) == len(numbers)
    for i, client in enumerate(made):
        expected = f"Client #{client['number']}" if i % 2 else f"Клиент №{client['number']}"
        assert client["name"] == expected
    listed = clients.call("search_clients", filters={"manager_id": manager}, per_page=100)
    assert listed["total"] == 24


def test_client_keeps_the_requisites_of_its_kind(clients: ClientsEnv):
    bik, corr = REAL_BANKS[3]
    account = next(a for a, b in REAL_ACCOUNTS if b == bik)
    legal = clients.call("create_client", {
        "name": "ООО «Реквизит»", "kind": "legal", "inn": inn10(), "kpp": "773601001",
        "ogrn": "1027700132195", "legal_address": "Москва, ул. Вавилова, 19", "bik": bik,
        "settlement_account": account, "correspondent_account": corr})
    assert legal["requisites"]["bik"] == bik and legal["requisites"]["kpp"] == "773601001"
    assert legal["inn"] == legal["requisites"]["inn"]
    ip_inn = inn12()
    entrepreneur = clients.call("create_client", {
        "name": "ИП Петров", "kind": "entrepreneur", "inn": ip_inn,
        "ogrnip": ogrnip_with_remainder(5)})
    assert entrepreneur["inn"] == ip_inn and "kpp" not in entrepreneur["requisites"]
    person = clients.call("create_client", {"name": "Иван Частный", "kind": "person",
                                            "phone": "8 916 700 11 22", "email": "I@Mail.RU"})
    assert person["requisites"]["phone"] == "+79167001122"
    assert person["requisites"]["email"] == "i@mail.ru"


@pytest.mark.parametrize(("data", "field"), [
    ({"name": "Плохой ИНН", "inn": "7707083894"}, "inn"),
    ({"name": "ИНН ИП у юрлица", "inn": "500100732259"}, "inn"),
    ({"name": "КПП", "inn": "7707083893", "kpp": "77360100"}, "kpp"),
    ({"name": "Счёт", "inn": "7707083893", "bik": "044525225",
      "settlement_account": "40702810299993174021"}, "settlement_account"),
    ({"kind": "entrepreneur", "inn": "500100732259", "kpp": "773601001"}, "kpp"),
    ({"kind": "company"}, "kind"),
    ({"name": "Сайт", "inn": "7707083893", "website": "javascript:alert(1)"}, "website"),
    ({"name": "Менеджер", "inn": "7707083893", "manager_id": "anna"}, "manager_id"),
    ({"name": "Контакт", "inn": "7707083893", "contacts": [{"name": "Без", "phones": ["123"]}]},
     "contacts.0.phones.0"),
    ({"name": "Контакт", "inn": "7707083893", "contacts": ["Пётр"]}, "contacts.0"),
])
def test_bad_client_input_is_refused_naming_the_field_and_writes_nothing(
        clients: ClientsEnv, data: dict, field: str):
    with clients.session() as db:
        before = db.scalar(select(func.count()).select_from(outbox))
    with pytest.raises(ValidationError) as refused:
        clients.call("create_client", data)
    assert refused.value.field == field
    with clients.session() as db:
        assert db.scalar(select(func.count()).select_from(outbox)) == before
        assert db.scalar(select(func.count()).select_from(Client)
                         .where(Client.name == data.get("name", "-"))) == 0


def test_new_client_is_announced_and_its_manager_defaults_to_the_creator(clients: ClientsEnv,
                                                                         manager: int):
    created = clients.spy("client_created")
    client = clients.call("create_client", {"name": "ООО «Событие»", "inn": inn10()},
                          user_id=manager)
    assert client["manager_id"] == manager and client["created_by"] == manager
    [event] = wait_until(lambda: [e for e in created.events
                                  if e["data"]["client_id"] == client["id"]])
    assert event["data"] == {"client_id": client["id"], "name": "ООО «Событие»",
                             "inn": client["inn"], "manager_id": manager,
                             "kind": "legal", "client_group_id": None}
    created.close()


def test_contact_needs_only_a_name_and_a_phone_stored_in_e164(clients: ClientsEnv):
    added = clients.spy("contact_added")
    client = clients.call("create_client", {"name": "ООО «Контакт»", "inn": inn10()})
    contact = clients.call("add_contact", client["id"],
                           {"name": "Пётр Сидоров", "phones": "8 (495) 123-45-67 доб. 12"})
    assert contact["phones"] == ["+74951234567;ext=12"] and contact["emails"] == []
    assert clients.call("list_contacts", client["id"]) == [contact]
    assert clients.call("get_client", client["id"])["contacts"] == [contact]
    [event] = wait_until(lambda: [e for e in added.events
                                  if e["data"]["client_id"] == client["id"]])
    assert event["data"]["contact"] == contact
    added.close()
    with pytest.raises(ValidationError) as refused:
        clients.call("add_contact", client["id"], {"name": "Ошибка", "phones": ["+7 916 12"]})
    assert refused.value.field == "phones.0"
    # known only by a phone, the contact is named by it; with nothing at all it is refused
    assert clients.call("add_contact", client["id"],
                        {"phones": ["+79161112233"]})["name"] == "+79161112233"
    with pytest.raises(ValidationError) as nameless:
        clients.call("add_contact", client["id"], {"position": "Директор"})
    assert nameless.value.field == "name"
    with pytest.raises(NotFound):
        clients.call("add_contact", 10**9, {"name": "Никто", "phones": ["+79161112233"]})


def test_contact_is_found_by_a_phone_typed_in_any_format(clients: ClientsEnv):
    number = mobile()
    client = clients.call("create_client", {"name": "ООО «Телефон»", "inn": inn10()})
    contact = clients.call("add_contact", client["id"], {"name": "Анна", "phones": [number]})
    digits = number[2:]
    dashed = f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}"
    for typed in (number, "8" + digits, dashed, f"+7 {digits[:3]} {digits[3:]}"):
        assert clients.call("find_contact_by_phone", typed)["id"] == contact["id"], typed
    office = clients.call("add_contact", client["id"],
                          {"name": "Секретарь", "phones": ["+7 495 765-00-01 доб. 7"]})
    assert clients.call("find_contact_by_phone", "84957650001")["id"] == office["id"]
    assert clients.call("find_contact_by_phone", "+7 999 000-00-00") is None
    assert clients.call("find_contact_by_phone", "not a number") is None


def history_of(clients: ClientsEnv, client_id: int) -> list[tuple]:
    return [(h["field"], h["old_value"], h["new_value"], h["user_id"], h["source"])
            for h in reversed(clients.call("client_history", client_id))]


def test_every_kind_of_change_is_written_to_the_history_with_who_and_where(clients: ClientsEnv):
    inn = inn10()
    client = clients.call("create_client", {"name": "ООО «История»", "inn": inn}, user_id=1)
    updated = clients.call("update_client", client["id"],
                           {"name": "ООО «История и Ко»", "website": "history.ru",
                            "manager_id": 2}, user_id=1, version=client["version"])
    assert updated["version"] == client["version"] + 1
    clients.call("update_client", client["id"], {"kpp": "773601001"}, user_id=2, source="api")
    contact = clients.call("add_contact", client["id"],
                           {"name": "Ольга", "phones": ["+79160000001"]}, user_id=2)
    clients.call("update_contact", contact["id"], {"position": "Бухгалтер",
                                                   "phones": ["+79160000002"]}, user_id=1)
    assert history_of(clients, client["id"]) == [
        ("created", None, "ООО «История»", 1, "ui"),
        ("name", "ООО «История»", "ООО «История и Ко»", 1, "ui"),
        ("website", None, "https://history.ru", 1, "ui"),
        ("manager_id", "1", "2", 1, "ui"),
        ("requisites.kpp", None, "773601001", 2, "api"),
        ("contact", None, "Ольга: +79160000001", 2, "ui"),
        ("contact.position", None, "Бухгалтер", 1, "ui"),
        ("contact.phones", "+79160000001", "+79160000002", 1, "ui"),
    ]
    entries = clients.call("client_history", client["id"])
    assert all(e["changed_at"] for e in entries)


def test_saving_a_form_unchanged_writes_no_history_and_announces_nothing(clients: ClientsEnv):
    client = clients.call("create_client", {"name": "ООО «Тишина»", "inn": inn10(),
                                            "website": "quiet.ru"})
    same = clients.call("update_client", client["id"], {"name": "ООО «Тишина»",
                                                        "website": "https://quiet.ru",
                                                        "inn": client["inn"], "kpp": ""},
                        version=client["version"])
    assert same["version"] == client["version"]
    assert [h["field"] for h in clients.call("client_history", client["id"])] == ["created"]


def test_update_announces_each_changed_field_with_old_and_new(clients: ClientsEnv):
    updated = clients.spy("client_updated")
    client = clients.call("create_client", {"name": "ООО «Старое»", "inn": inn10()})
    new_inn = inn10()
    clients.call("update_client", client["id"], {"name": "ООО «Новое»", "inn": new_inn},
                 user_id=3)
    [event] = wait_until(lambda: [e for e in updated.events
                                  if e["data"]["client_id"] == client["id"]])
    assert event["data"] == {
        "client_id": client["id"], "inn": new_inn, "name": "ООО «Новое»",
        "manager_id": None, "user_id": 3, "kind": "legal", "client_group_id": None,
        "changes": {"name": ["ООО «Старое»", "ООО «Новое»"],
                    "requisites.inn": [client["inn"], new_inn]}}
    updated.close()


def test_a_change_over_someone_elses_newer_change_is_refused(clients: ClientsEnv):
    client = clients.call("create_client", {"name": "ООО «Гонка»", "inn": inn10()})
    clients.call("update_client", client["id"], {"address": "Тверь"}, version=client["version"])
    with pytest.raises(Conflict):
        clients.call("update_client", client["id"], {"address": "Псков"},
                     version=client["version"])
    assert clients.call("get_client", client["id"])["address"] == "Тверь"


def test_changing_the_kind_rechecks_the_requisites_for_the_new_kind(clients: ClientsEnv):
    client = clients.call("create_client", {"name": "Смена", "inn": inn10(),
                                            "kpp": "773601001"})
    with pytest.raises(ValidationError) as refused:
        clients.call("update_client", client["id"], {"kind": "entrepreneur"})
    assert refused.value.field == "inn"  # a 10-digit INN is not an entrepreneur's
    ip_inn = inn12()
    changed = clients.call("update_client", client["id"], {"kind": "entrepreneur",
                                                           "inn": ip_inn})
    assert changed["kind"] == "entrepreneur" and changed["inn"] == ip_inn
    assert "kpp" not in changed["requisites"]
    fields = {h["field"]: h for h in clients.call("client_history", client["id"])}
    assert fields["requisites.kpp"]["old_value"] == "773601001"
    assert fields["kind"]["new_value"] == "entrepreneur"


def test_same_inn_or_phone_is_flagged_on_create_and_on_edit(clients: ClientsEnv):
    inn, phone = inn10(), mobile()
    first = clients.call("create_client", {"name": "ООО «Первый»", "inn": inn,
                                           "contacts": [{"name": "Олег", "phones": [phone]}]})
    assert first["duplicates"] == []
    same_inn = clients.call("create_client", {"name": "ООО «Второй»", "inn": inn})
    assert same_inn["duplicates"] == [{"id": first["id"], "number": first["number"],
                                       "name": "ООО «Первый»", "inn": inn,
                                       "reasons": [{"reason": "inn", "value": inn}]}]
    digits = phone[2:]
    same_phone = clients.call("create_client", {
        "name": "Ольга", "kind": "person", "phone": f"8 ({digits[:3]}) {digits[3:]}"})
    assert [(d["id"], d["reasons"]) for d in same_phone["duplicates"]] == [
        (first["id"], [{"reason": "phone", "value": phone}])]
    other = clients.call("create_client", {"name": "ООО «Третий»", "inn": inn10()})
    edited = clients.call("update_client", other["id"], {"inn": inn})
    assert {d["id"] for d in edited["duplicates"]} == {first["id"], same_inn["id"]}
    assert {d["id"] for d in clients.call("find_duplicates", first["id"])} == {
        same_inn["id"], same_phone["id"], other["id"]}


def test_merge_moves_everything_to_the_survivor_and_tells_other_services(clients: ClientsEnv,
                                                                        manager: int):
    merged_events = clients.spy("client_merged")
    inn = inn10()
    survivor = clients.call("create_client", {"name": "ООО «Остаётся»", "inn": inn,
                                              "manager_id": manager}, user_id=manager)
    other = clients.call("create_client", {
        "name": "Остаётся (дубль)", "inn": inn, "website": "dub.ru", "kpp": "773601001",
        "manager_id": manager, "contacts": [{"name": "Пётр", "phones": [mobile()]}]},
        user_id=manager)
    clients.call("add_comment", other["id"], "Звонил, просил счёт", user_id=manager)
    clients.publish("deals", "reminder_created",
                    {"reminder_id": f"r-{tag()}", "client_id": other["id"], "deal_id": 5})
    wait_until(lambda: clients.call("get_client", other["id"])["open_reminders"] == 1,
               message="the reminder to be counted")

    result = clients.call("merge_clients", survivor["id"], other["id"], user_id=manager)

    assert result["name"] == "ООО «Остаётся»"  # the survivor's own values win
    assert result["website"] == "https://dub.ru"  # its empty fields take the other's
    assert result["requisites"]["kpp"] == "773601001"
    assert [c["name"] for c in result["contacts"]] == ["Пётр"]
    assert clients.call("get_client", survivor["id"])["open_reminders"] == 1
    assert [c["text"] for c in clients.call("list_comments", survivor["id"])] == [
        "Звонил, просил счёт"]
    fields = [h["field"] for h in clients.call("client_history", survivor["id"])]
    assert fields.count("created") == 2 and "merged" in fields and "website" in fields
    gone = clients.call("get_client", other["id"])
    assert gone["merged_into"] == survivor["id"] and gone["contacts"] == []
    listed = clients.call("search_clients", filters={"manager_id": manager})
    assert [c["id"] for c in listed["items"]] == [survivor["id"]]
    [event] = wait_until(lambda: [e for e in merged_events.events
                                  if e["data"]["survivor_id"] == survivor["id"]])
    assert event["data"] == {"survivor_id": survivor["id"], "merged_id": other["id"],
                             "user_id": manager}
    merged_events.close()

    with pytest.raises(Conflict):
        clients.call("merge_clients", survivor["id"], other["id"])
    with pytest.raises(Conflict):
        clients.call("update_client", other["id"], {"address": "Омск"})
    with pytest.raises(ValidationError) as itself:
        clients.call("merge_clients", survivor["id"], survivor["id"])
    assert itself.value.field == "merged_id"


def test_comments_are_listed_newest_first_and_an_empty_one_is_refused(clients: ClientsEnv):
    client = clients.call("create_client", {"name": "ООО «Комментарий»", "inn": inn10()})
    clients.call("add_comment", client["id"], "первый", user_id=4)
    second = clients.call("add_comment", client["id"], "второй\nв две строки", user_id=4)
    assert second["text"] == "второй\nв две строки" and second["user_id"] == 4
    assert [c["text"] for c in clients.call("list_comments", client["id"])] == [
        "второй\nв две строки", "первый"]
    with pytest.raises(ValidationError) as empty:
        clients.call("add_comment", client["id"], "   ")
    assert empty.value.field == "text"
    with clients.session() as db:
        assert db.scalar(select(func.count()).select_from(ClientHistory)
                         .where(ClientHistory.client_id == client["id"])) == 1
