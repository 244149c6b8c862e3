"""The clients service enforces the permission matrix: a manager changes only the clients
they manage (and clients nobody manages); heads change all; the accountant none."""
from __future__ import annotations

import pytest

from services.kit.errors import Forbidden
from tests.service.clients.conftest import inn10, unique


def actor(user_id: int, role: str) -> dict:
    return {"id": user_id, "roles": [role]}


@pytest.mark.parametrize("role,own_ok,other_ok", [("manager", True, False), ("head", True, True),
                                                  ("admin", True, True),
                                                  ("accountant", False, False)])
def test_changing_a_client_follows_the_matrix(clients, manager, role, own_ok, other_ok):
    other = unique()  # another test's manager must not see these clients
    mine = clients.call("create_client", {"name": "ООО «Мой»", "inn": inn10(),
                                          "manager_id": manager})
    theirs = clients.call("create_client", {"name": "ООО «Чужой»", "kind": "person",
                                            "manager_id": other})
    for client, ok in ((mine, own_ok), (theirs, other_ok)):
        def rename(client=client) -> dict:
            return clients.call("update_client", client["id"], {"city": "Тверь"},
                                user_id=manager, actor=actor(manager, role))

        def add_contact(client=client) -> dict:
            return clients.call("add_contact", client["id"], {"name": "Олег",
                                                              "phones": ["+79161234567"]},
                                user_id=manager, actor=actor(manager, role))

        if ok:
            assert rename()["city"] == "Тверь" and add_contact()["name"] == "Олег"
        else:
            with pytest.raises(Forbidden):
                rename()
            with pytest.raises(Forbidden):
                add_contact()
            assert clients.call("get_client", client["id"])["city"] in (None, "")


def test_a_manager_cannot_merge_anothers_client_or_create_one_for_someone_else(
        clients, manager):
    mine = clients.call("create_client", {"name": "ООО «Мой»", "kind": "person",
                                          "manager_id": manager})
    theirs = clients.call("create_client", {"name": "ООО «Чужой»", "kind": "person",
                                            "manager_id": unique()})
    with pytest.raises(Forbidden):
        clients.call("merge_clients", mine["id"], theirs["id"], user_id=manager,
                     actor=actor(manager, "manager"))
    with pytest.raises(Forbidden):
        clients.call("create_client", {"name": "ООО «Кому-то»", "kind": "person",
                                       "manager_id": unique()},
                     user_id=manager, actor=actor(manager, "manager"))
    unowned = clients.call("create_client", {"name": "ООО «Ничей»", "kind": "person"})
    assert clients.call("update_client", unowned["id"], {"city": "Омск"}, user_id=manager,
                        actor=actor(manager, "manager"))["city"] == "Омск"
