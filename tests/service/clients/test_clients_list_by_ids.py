"""The client list sliced by ids another context chose (the RFM segment the gateway asked
analytics for), combined with the other filters and paged as usual."""
from __future__ import annotations

import pytest

from services.kit.errors import ValidationError

from .conftest import ClientsEnv, inn10


def test_only_the_clients_named_by_id_are_listed(clients: ClientsEnv, manager: int):
    made = [clients.call("create_client", {"name": f"ООО «Сегмент {i}»", "inn": inn10(),
                                           "kind": "legal"}, user_id=manager)
            for i in range(4)]
    wanted = [made[1]["id"], made[3]["id"], 10**12]  # an unknown id finds nothing
    found = clients.call("search_clients", "", filters={"manager_id": manager,
                                                        "ids": wanted})
    assert [c["id"] for c in found["items"]] == [made[1]["id"], made[3]["id"]]
    assert found["total"] == 2
    none = clients.call("search_clients", "", filters={"manager_id": manager, "ids": []})
    assert none["total"] == 0 and none["items"] == []
    with pytest.raises(ValidationError) as bad:
        clients.call("search_clients", "", filters={"ids": ["x"]})
    assert bad.value.field == "ids"


def test_groups_of_companies_and_relations_between_clients(clients: ClientsEnv, manager: int):
    from uuid import uuid4
    holding = clients.call("save_client_group", {"name": f"Холдинг {uuid4().hex[:6]}"},
                           user_id=manager)
    head, plant, partner = (clients.call("create_client", {
        "name": f"ООО «{n}»", "inn": inn10(), "kind": "legal"}, user_id=manager)
        for n in ("Головная", "Завод", "Партнёр"))
    moved = clients.spy("client_group_changed")
    for c in (head, plant):
        clients.call("set_client_group", c["id"], holding["id"], user_id=manager)
    event = moved.wait_for("client_group_changed")[0]["data"]
    assert event["client_group_id"] == holding["id"] and event["previous_group_id"] is None
    assert clients.call("get_client", plant["id"])["client_group_id"] == holding["id"]
    in_group = clients.call("search_clients", "", filters={"group_id": holding["id"]})
    assert sorted(c["id"] for c in in_group["items"]) == sorted([head["id"], plant["id"]])
    assert next(g for g in clients.call("list_client_groups")
                if g["id"] == holding["id"])["clients"] == 2

    # the plant is a subsidiary (division) of the head company; a partner beside it
    clients.call("add_client_relation", head["id"], plant["id"], "subsidiary", user_id=manager)
    clients.call("add_client_relation", head["id"], partner["id"], "partner", user_id=manager)
    clients.call("add_client_relation", head["id"], partner["id"], "partner",
                 user_id=manager)  # twice is once
    seen_from_head = clients.call("client_relations", head["id"])
    assert [(r["client_id"], r["kind"]) for r in seen_from_head] == [
        (plant["id"], "subsidiary"), (partner["id"], "partner")]
    assert [(r["client_id"], r["kind"], r["name"]) for r in
            clients.call("client_relations", plant["id"])] == [
        (head["id"], "parent", "ООО «Головная»")]
    with pytest.raises(ValidationError) as loop:  # the head's parent cannot be its plant
        clients.call("add_client_relation", head["id"], plant["id"], "parent",
                     user_id=manager)
    assert loop.value.key == "relation.cycle"
    with pytest.raises(ValidationError) as taken:
        clients.call("save_client_group", {"name": holding["name"]}, user_id=manager)
    assert taken.value.key == "client_group.name_taken"
    relation = seen_from_head[1]["id"]
    left = clients.call("remove_client_relation", partner["id"], relation, user_id=manager)
    assert left == []
    clients.call("set_client_group", plant["id"], None, user_id=manager)
    assert clients.call("get_client", plant["id"])["client_group_id"] is None
