"""The client list sliced by ids another context chose, and by the RFM segment analytics
announces, combined with the other filters and paged as usual."""
from __future__ import annotations

import pytest

from services.kit.errors import ValidationError
from tests.support.infra import wait_until

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


def segments_event(clients: ClientsEnv, at: str, changes: dict[int, str | None]) -> None:
    body = clients.publish("analytics", "client_segments_changed", {
        "computed_at": at,
        "changes": [{"client_id": cid, "segment": seg, "previous": None}
                    for cid, seg in changes.items()]})
    wait_until(lambda: clients.applied(body["event_id"]))


def in_segment(clients: ClientsEnv, manager: int, segment: str) -> list[int]:
    found = clients.call("search_clients", "", filters={"manager_id": manager,
                                                        "segment": segment})
    assert found["total"] == len(found["items"])
    return sorted(c["id"] for c in found["items"])


def test_the_list_filters_by_the_rfm_segment_analytics_announced(clients: ClientsEnv,
                                                                 manager: int):
    a, b, c, merged = (clients.call("create_client", {"name": f"ООО «RFM {i}»",
                                                      "inn": inn10()}, user_id=manager)
                       for i in range(4))
    segments_event(clients, "2026-11-01T03:00:00+00:00",
                   {a["id"]: "at_risk", b["id"]: "at_risk", c["id"]: "loyal"})
    assert in_segment(clients, manager, "at_risk") == sorted([a["id"], b["id"]])
    assert in_segment(clients, manager, "loyal") == [c["id"]]
    # a computation older than the one kept changes nothing, whenever it arrives
    segments_event(clients, "2026-10-31T03:00:00+00:00", {a["id"]: "champions"})
    assert in_segment(clients, manager, "champions") == []
    # a newer one moves the client; null takes it out of any segment
    segments_event(clients, "2026-11-02T03:00:00+00:00", {a["id"]: "champions",
                                                          b["id"]: None})
    assert in_segment(clients, manager, "champions") == [a["id"]]
    assert in_segment(clients, manager, "at_risk") == []
    # a merged client's segment is its survivor's, unless the survivor has its own
    clients.call("merge_clients", c["id"], merged["id"], user_id=manager)
    segments_event(clients, "2026-11-03T03:00:00+00:00", {merged["id"]: "lost"})
    assert in_segment(clients, manager, "lost") == [c["id"]]
    segments_event(clients, "2026-11-04T03:00:00+00:00", {merged["id"]: "lost",
                                                          c["id"]: "promising"})
    assert in_segment(clients, manager, "promising") == [c["id"]]
    with pytest.raises(ValidationError) as bad:
        clients.call("search_clients", "", filters={"segment": "Robert'); DROP"})
    assert bad.value.field == "segment" and bad.value.key == "segment.invalid"


def test_an_unusable_segments_event_is_refused_whole(clients: ClientsEnv, manager: int):
    a = clients.call("create_client", {"name": "ООО «RFM сбой»", "inn": inn10()},
                     user_id=manager)
    body = clients.publish("analytics", "client_segments_changed", {
        "computed_at": "2026-11-05T03:00:00+00:00",
        "changes": [{"client_id": a["id"], "segment": "hibernating"},
                    {"client_id": "x", "segment": "lost"}]})
    wait_until(lambda: clients.applied(body["event_id"]))
    assert in_segment(clients, manager, "hibernating") == []
