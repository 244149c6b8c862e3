"""Duplicates of many enquiries in one call answer what one call per enquiry answers."""
from __future__ import annotations

import random

import pytest

from services.kit.errors import ValidationError
from tests.service.clients.conftest import ClientsEnv, inn10, mobile, tag


def test_find_matches_many_answers_each_query_as_find_matches_does(clients: ClientsEnv):
    rng = random.Random(11)
    phones, emails, inns = [], [], []
    for i in range(6):
        phone, email, inn = mobile(), f"m{tag()}@Example.ru", inn10()
        phones.append(phone), emails.append(email), inns.append(inn)
        clients.call("create_client", {
            "name": f"ООО «Совпадение {i}»", "kind": "legal", "inn": inn,
            "contacts": [{"name": f"Контакт {i}", "phones": [phone],
                          "emails": [email, f"x{tag()}@example.ru"]},
                         {"name": f"Второй {i}", "phones": [phones[0]]}]})
    # an office phone with extensions (found by the number without one), five contacts
    # sharing a phone (the limit bites), a client merged into another (never a match)
    office = mobile().replace("+7916", "+7495")
    clients.call("create_client", {
        "name": "ООО «Добавочные»", "kind": "legal", "inn": inn10(),
        "contacts": [{"name": f"Добавочный {k}", "phones": [f"{office};ext={k}"]}
                     for k in (12, 7)] + [{"name": "Общий", "phones": [office]}]})
    crowd = mobile()
    clients.call("create_client", {
        "name": "ООО «Толпа»", "kind": "legal", "inn": inn10(),
        "contacts": [{"name": f"Один из {k}", "phones": [crowd]} for k in range(5)]})
    gone_inn, gone_email = inn10(), f"gone{tag()}@example.ru"
    survivor = clients.call("create_client", {"name": "ООО «Осталась»", "kind": "legal"})
    gone = clients.call("create_client", {
        "name": "ООО «Влилась»", "kind": "legal", "inn": gone_inn,
        "contacts": [{"name": "Ушедший", "emails": [gone_email]}]})
    clients.call("merge_clients", survivor["id"], gone["id"])
    phones += [office, f"{office} доб. 12", crowd]
    emails.append(gone_email)
    inns.append(gone_inn)
    queries: list = [{"phone": 79161234567, "email": ["x"], "inn": 7701234567}]
    for _ in range(40):
        query = {}
        if rng.random() < 0.6:
            query["phone"] = rng.choice(phones + [mobile(), "не телефон"]).replace("+7", "8 ")
        if rng.random() < 0.6:
            query["email"] = rng.choice(emails + [f"nobody{tag()}@example.ru"]).upper()
        if rng.random() < 0.4:
            query["inn"] = rng.choice(inns + ["123"])
        queries.append(query)
    one_by_one = [clients.call("find_matches", **q, limit=3) for q in queries]
    assert clients.call("find_matches_many", queries, limit=3) == one_by_one
    assert any(one_by_one) and not all(one_by_one)  # both kinds of answer were asked
    assert any(len(found) == 3 for found in one_by_one)  # the limit was reached
    extensions = clients.call("find_matches", phone=office, limit=10)
    assert sorted(m["contact_name"] for m in extensions) == ["Добавочный 12", "Добавочный 7",
                                                              "Общий"]


def test_find_matches_many_refuses_what_is_no_list_of_queries(clients: ClientsEnv):
    with pytest.raises(ValidationError):
        clients.call("find_matches_many", {"email": "a@b.ru"})
    assert clients.call("find_matches_many", [{}, "x"]) == [[], []]
