"""The client list on a real database: search by name, INN and phone in any format,
filters, sorting, paging (C4), and neglected clients kept up to date from other services'
events (C6)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy import text as sql

from services.clients.models import Client, inbox
from services.kit.errors import ValidationError
from tests.support.infra import wait_until

from .conftest import ClientsEnv, inn10, inn12, mobile, tag


def names(result: dict) -> list[str]:
    return [c["name"] for c in result["items"]]


def listed(clients: ClientsEnv, manager: int, query: str = "", **kwargs) -> dict:
    filters = {"manager_id": manager, **kwargs.pop("filters", {})}
    return clients.call("search_clients", query, filters=filters, **kwargs)


def test_name_search_is_partial_case_insensitive_and_reads_yo_as_ye(clients: ClientsEnv,
                                                                     manager: int):
    for name in ("ООО «Фёдор и Ёжик»", "АО «Северный ветер»", "ИП Федоров"):
        clients.call("create_client", {"name": name, "inn": inn10() if "ИП" not in name
                                       else inn12(), "kind": "entrepreneur" if "ИП" in name
                                       else "legal"}, user_id=manager)
    assert names(listed(clients, manager, "федор")) == ["ИП Федоров", "ООО «Фёдор и Ёжик»"]
    assert names(listed(clients, manager, filters={"name": "ЁЖИК"})) == ["ООО «Фёдор и Ёжик»"]
    assert names(listed(clients, manager, "СЕВЕРН")) == ["АО «Северный ветер»"]
    assert names(listed(clients, manager, "100%_")) == []  # wildcards are plain text


def test_a_phone_typed_in_another_format_finds_the_client(clients: ClientsEnv, manager: int):
    number = mobile()
    digits = number[2:]
    client = clients.call("create_client", {
        "name": "ООО «Звонок»", "inn": inn10(),
        "contacts": [{"name": "Игорь", "phones": [f"+7 ({digits[:3]}) {digits[3:]}"]}]},
        user_id=manager)
    clients.call("create_client", {"name": "ООО «Другой»", "inn": inn10(),
                                   "contacts": [{"name": "Ян", "phones": [mobile()]}]},
                 user_id=manager)
    person = clients.call("create_client", {"name": "Пётр Лично", "kind": "person",
                                            "phone": mobile()}, user_id=manager)
    for typed in ("8" + digits, f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}",
                  f"{digits[3:6]}-{digits[6:8]}-{digits[8:]}"):
        assert [c["id"] for c in listed(clients, manager, filters={"phone": typed})["items"]] \
            == [client["id"]], typed
        assert [c["id"] for c in listed(clients, manager, typed)["items"]] == [client["id"]]
    own = person["requisites"]["phone"]
    assert [c["id"] for c in listed(clients, manager, filters={"phone": own[1:]})["items"]] \
        == [person["id"]]
    assert listed(clients, manager, filters={"phone": "8" + digits})["items"][0]["phone"] \
        == number


def test_inn_search_finds_by_the_whole_number_and_by_its_start(clients: ClientsEnv,
                                                               manager: int):
    inn = inn10()
    client = clients.call("create_client", {"name": "ООО «ИНН»", "inn": inn}, user_id=manager)
    clients.call("create_client", {"name": "ООО «Не тот»", "inn": inn10()}, user_id=manager)
    assert [c["id"] for c in listed(clients, manager, inn)["items"]] == [client["id"]]
    assert [c["id"] for c in listed(clients, manager, filters={"inn": inn})["items"]] == [
        client["id"]]
    assert client["id"] in [c["id"] for c in
                            listed(clients, manager, filters={"inn": inn[:8]})["items"]]


def test_filters_combine_and_any_shown_column_sorts(clients: ClientsEnv, manager: int):
    city = f"Тверь-{tag()}"
    rows = [("Бета", "legal", city), ("Альфа", "legal", city), ("Гамма", "person", city),
            ("Дельта", "legal", "Омск")]
    made = {}
    for name, kind, town in rows:
        data = {"name": name, "kind": kind, "city": town}
        if kind == "legal":
            data["inn"] = inn10()
        made[name] = clients.call("create_client", data, user_id=manager)
    assert names(listed(clients, manager, filters={"city": city.upper()})) == [
        "Альфа", "Бета", "Гамма"]
    assert names(listed(clients, manager, filters={"city": city, "kind": "legal"})) == [
        "Альфа", "Бета"]
    assert names(listed(clients, manager, sort="-name")) == ["Дельта", "Гамма", "Бета",
                                                             "Альфа"]
    assert names(listed(clients, manager, sort="number")) == ["Бета", "Альфа", "Гамма",
                                                              "Дельта"]
    assert names(listed(clients, manager, sort="-city"))[-1] == "Дельта"
    page2 = listed(clients, manager, page=2, per_page=3)
    assert page2["total"] == 4 and names(page2) == ["Дельта"]
    today = datetime.now(UTC).date()
    assert listed(clients, manager, filters={"created_from": str(today),
                                             "created_to": str(today)})["total"] == 4
    assert listed(clients, manager, filters={"created_to": str(today - timedelta(days=1))}
                  )["total"] == 0


def test_sorting_by_manager_follows_the_order_of_their_names(clients: ClientsEnv):
    city = f"Сортировка-{tag()}"
    first = clients.call("create_client", {"name": "У Бориса", "inn": inn10(), "city": city,
                                           "manager_id": 7})
    second = clients.call("create_client", {"name": "У Анны", "inn": inn10(), "city": city,
                                            "manager_id": 9})
    # the gateway knows that user 9 is "Анна" and user 7 is "Борис"
    result = clients.call("search_clients", filters={"city": city}, sort="manager",
                          manager_order=[9, 7])
    assert [c["id"] for c in result["items"]] == [second["id"], first["id"]]


@pytest.mark.parametrize(("filters", "sort", "field"), [
    ({"created_from": "вчера"}, "name", "created_from"),
    ({"created_from": "2026-02-01", "created_to": "2026-01-01"}, "name", "created_to"),
    ({"phone": "12"}, "name", "phone"),
    ({"inn": "77O7"}, "name", "inn"),
    ({"kind": "company"}, "name", "kind"),
    ({"neglected_days": "0"}, "name", "neglected_days"),
    ({"manager_id": "anna"}, "name", "manager_id"),
    ({"colour": "red"}, "name", "colour"),
    ({}, "password", "sort"),
])
def test_a_bad_filter_is_refused_naming_it(clients: ClientsEnv, filters: dict, sort: str,
                                           field: str):
    with pytest.raises(ValidationError) as refused:
        clients.call("search_clients", "", filters=filters, sort=sort)
    assert refused.value.field == field


def set_created(clients: ClientsEnv, client_id: int, days_ago: int) -> None:
    """Time travel for a test: the client was created ``days_ago`` days ago."""
    with clients.session() as db:
        db.execute(update(Client).where(Client.id == client_id)
                   .values(created_at=datetime.now(UTC) - timedelta(days=days_ago)))
        db.commit()


def last_contact(clients: ClientsEnv, client_id: int) -> str | None:
    return clients.call("get_client", client_id)["last_contact_at"]


def test_comments_calls_and_completed_reminders_take_a_client_off_the_neglected_list(
        clients: ClientsEnv, manager: int):
    made = {}
    for name in ("Комментарий", "Звонок", "Напоминание", "Старый звонок", "Забытый",
                 "Новый"):
        made[name] = clients.call("create_client", {"name": name, "kind": "person"},
                                  user_id=manager)["id"]
        if name != "Новый":
            set_created(clients, made[name], 90)
    clients.call("add_comment", made["Комментарий"], "Обсудили договор", user_id=manager)
    recent = datetime.now(UTC) - timedelta(days=2)
    clients.publish("telephony", "call_finished", {
        "id": 1, "client_id": made["Звонок"], "started_at": recent.isoformat(),
        "outcome": "answered"})
    clients.publish("telephony", "call_finished", {
        "id": 2, "client_id": made["Старый звонок"],
        "started_at": (recent - timedelta(days=60)).isoformat()})
    clients.publish("deals", "reminder_completed", {
        "reminder_id": tag(), "client_id": made["Напоминание"], "deal_id": 3,
        "completed_at": recent.isoformat()})
    for name in ("Звонок", "Старый звонок", "Напоминание"):
        wait_until(lambda n=name: last_contact(clients, made[n]), message=f"{name} contact")
    neglected = names(listed(clients, manager, filters={"neglected_days": 30}))
    assert neglected == ["Забытый", "Старый звонок"]
    assert names(listed(clients, manager, filters={"neglected_days": 1})) == [
        "Забытый", "Звонок", "Напоминание", "Старый звонок"]


def test_an_older_call_reported_late_does_not_move_the_last_contact_back(clients: ClientsEnv):
    client = clients.call("create_client", {"name": "Порядок", "kind": "person"})
    newer = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    clients.publish("telephony", "call_finished", {"client_id": client["id"],
                                                   "started_at": newer.isoformat()})
    wait_until(lambda: last_contact(clients, client["id"]), message="the first call")
    older = clients.publish("telephony", "call_finished", {
        "client_id": client["id"], "started_at": (newer - timedelta(days=5)).isoformat()})
    wait_until(lambda: clients.applied(older["event_id"]), message="the older call")
    assert datetime.fromisoformat(last_contact(clients, client["id"])) == newer


def test_open_reminders_follow_reminder_events_in_any_order_and_once(clients: ClientsEnv,
                                                                     manager: int):
    waiting = clients.call("create_client", {"name": "Ждёт", "kind": "person"},
                           user_id=manager)
    done = clients.call("create_client", {"name": "Сделано", "kind": "person"},
                        user_id=manager)
    early = clients.call("create_client", {"name": "Обогнал", "kind": "person"},
                         user_id=manager)
    open_one, closed_one, overtaken = f"r-{tag()}", f"r-{tag()}", f"r-{tag()}"
    created = clients.publish("deals", "reminder_created", {
        "reminder_id": open_one, "client_id": waiting["id"], "deal_id": 1})
    clients.publish("deals", "reminder_created", {}, envelope=created)  # redelivered
    clients.publish("deals", "reminder_created", {"reminder_id": closed_one,
                                                  "client_id": done["id"], "deal_id": 2})
    clients.publish("deals", "reminder_completed", {
        "reminder_id": closed_one, "client_id": done["id"], "deal_id": 2,
        "completed_at": datetime.now(UTC).isoformat()})
    # the completion overtakes the creation: the reminder must stay completed
    clients.publish("deals", "reminder_completed", {
        "reminder_id": overtaken, "client_id": early["id"], "deal_id": 4,
        "completed_at": datetime.now(UTC).isoformat()})
    clients.publish("deals", "reminder_created", {"reminder_id": overtaken,
                                                  "client_id": early["id"], "deal_id": 4})
    wait_until(lambda: last_contact(clients, done["id"]) and
               last_contact(clients, early["id"]), message="the completions")
    wait_until(lambda: clients.call("get_client", waiting["id"])["open_reminders"] == 1,
               message="the open reminder")
    assert names(listed(clients, manager, filters={"no_open_reminder": "1"})) == [
        "Обогнал", "Сделано"]
    assert clients.call("get_client", waiting["id"])["open_reminders"] == 1


def test_events_about_a_merged_client_reach_the_survivor(clients: ClientsEnv):
    inn = inn10()
    survivor = clients.call("create_client", {"name": "Главный", "inn": inn})
    merged = clients.call("create_client", {"name": "Дубль", "inn": inn})
    clients.call("merge_clients", survivor["id"], merged["id"])
    at = datetime.now(UTC) - timedelta(hours=1)
    clients.publish("telephony", "call_finished", {"client_id": merged["id"],
                                                   "started_at": at.isoformat()})
    wait_until(lambda: last_contact(clients, survivor["id"]), message="the call")
    assert last_contact(clients, merged["id"]) is None


def test_an_unusable_event_is_refused_with_its_reason_and_changes_nothing(clients: ClientsEnv):
    client = clients.call("create_client", {"name": "Стойкий", "kind": "person"})
    bad_call = clients.publish("telephony", "call_finished", {"client_id": client["id"],
                                                              "started_at": "когда-то"})
    no_id = clients.publish("deals", "reminder_created", {"client_id": client["id"]})
    for event in (bad_call, no_id):
        wait_until(lambda e=event: clients.applied(e["event_id"]), message=event["type"])
    assert last_contact(clients, client["id"]) is None
    assert clients.call("get_client", client["id"])["open_reminders"] == 0
    with clients.session() as db:
        reasons = db.scalars(select(inbox.c.rejected).where(
            inbox.c.event_id.in_([bad_call["event_id"], no_id["event_id"]]))).all()
    assert sorted(r.split(":")[0] for r in reasons) == ["reminder_id", "started_at"]


def test_the_global_search_finds_contacts_by_name_part_phone_in_any_format_and_email(
        clients: ClientsEnv, manager: int):
    number = mobile()
    mark = tag()
    client = clients.call("create_client", {"name": f"ООО «Поиск {mark}»", "contacts": [
        {"name": f"Ирина Котова {mark}", "phones": [number], "emails": [f"{mark}@crm.test"]}]},
        user_id=manager)
    typed = f"8 ({number[2:5]}) {number[5:8]}-{number[8:10]}-{number[10:]}"
    for text in (f"котова {mark}", typed, f"{mark.upper()}@CRM.TEST"):
        found = clients.call("find_contacts", text)
        assert [(c["client_id"], c["client_name"]) for c in found] == [
            (client["id"], client["name"])], text
    assert clients.call("find_contacts", "x") == []


def test_the_header_search_may_skip_counting_the_matches(clients: ClientsEnv, manager: int):
    mark = tag()
    clients.call("create_client", {"name": f"ООО «Счёт {mark}»"}, user_id=manager)
    found = clients.call("search_clients", mark, per_page=5, count=False)
    assert found["total"] is None and [c["name"] for c in found["items"]] == [
        f"ООО «Счёт {mark}»"]


def test_a_common_fragment_lists_a_page_in_order_and_says_more_than(clients: ClientsEnv,
                                                                      manager: int):
    word = f"частый{tag()}"
    with clients.session() as db:  # 1,001 matches: more than the list counts one by one
        db.execute(sql("""
            INSERT INTO clients (number, kind, name, search_name, requisites, manager_id,
                                 version)
            SELECT nextval('client_number_seq'), 'legal', 'ООО «' || :w || ' ' || g || '»',
                   'ооо «' || :w || ' ' || g || '»', '{}'::jsonb, :m, 1
            FROM generate_series(1, 1001) AS g"""), {"w": word, "m": manager})
        db.commit()
        # the database's collation decides the order ("1000»" may sort before "100»")
        expected = list(db.scalars(sql("SELECT search_name FROM clients WHERE manager_id = :m"
                                       " ORDER BY search_name, id"), {"m": manager}))
    many = clients.call("search_clients", "", per_page=20, filters={"name": word})
    assert many["total"] == 1000 and many["total_exact"] is False
    assert [c["name"].lower() for c in many["items"]] == expected[:20]
    second = clients.call("search_clients", word, page=2, per_page=20,
                          filters={"manager_id": manager})  # the search box: same walk
    assert second["total_exact"] is False
    assert [c["name"].lower() for c in second["items"]] == expected[20:40]
    few = clients.call("search_clients", "", filters={"name": f"{word} 100"})
    assert few["total"] == 3 and few["total_exact"] is True  # 100, 1000, 1001
    assert [c["name"].lower() for c in few["items"]] == [
        n for n in expected if f"{word} 100" in n]


def test_one_and_two_letter_fragments_find_exactly_the_names_that_contain_them(
        clients: ClientsEnv, manager: int):
    made = {}
    for name in ("ООО «Ёж»", "АО «Ъмбра»", "ИП Эхо"):
        made[name] = clients.call("create_client", {
            "name": name, "inn": inn12() if "ИП" in name else inn10(),
            "kind": "entrepreneur" if "ИП" in name else "legal"}, user_id=manager)
    assert names(listed(clients, manager, "ъ")) == ["АО «Ъмбра»"]  # one letter: its grams
    assert names(listed(clients, manager, "Е")) == ["ООО «Ёж»"]  # "ё" is read as "е"
    assert names(listed(clients, manager, "хо")) == ["ИП Эхо"]  # two letters, mid-word
    assert names(listed(clients, manager, "«ъ")) == ["АО «Ъмбра»"]  # any character counts
    assert names(listed(clients, manager, "п э")) == ["ИП Эхо"]  # three: by trigrams
    assert names(listed(clients, manager, filters={"name": "ЭХ"})) == ["ИП Эхо"]
    assert names(listed(clients, manager, "%")) == []
    clients.call("update_client", made["ИП Эхо"]["id"], {"name": "ИП Ъхо"}, user_id=manager)
    assert names(listed(clients, manager, "ъ")) == ["АО «Ъмбра»", "ИП Ъхо"]  # kept on write
    assert names(listed(clients, manager, "эх")) == []


def test_a_common_fragment_with_another_filter_finds_every_client_the_filter_keeps(
        clients: ClientsEnv, manager: int):
    word = f"общий{tag()}"
    other = manager + 100_000  # another manager's clients, made after the first 1,001
    with clients.session() as db:
        db.execute(sql("""
            INSERT INTO clients (number, kind, name, search_name, requisites, manager_id,
                                 version)
            SELECT nextval('client_number_seq'), 'legal', 'ООО «' || :w || ' ' || g || '»',
                   'ооо «' || :w || ' ' || g || '»', '{}'::jsonb,
                   CASE WHEN g > 1001 THEN :o ELSE :m END, 1
            FROM generate_series(1, 1003) AS g"""), {"w": word, "m": manager, "o": other})
        db.commit()
    found = clients.call("search_clients", word, filters={"manager_id": other})
    assert found["total"] == 2 and found["total_exact"] is True
    assert sorted(c["name"] for c in found["items"]) == [
        f"ООО «{word} 1002»", f"ООО «{word} 1003»"]
