"""Relations between clients: stored once, seen from either side, never a parent loop."""
from __future__ import annotations

import pytest

from services.clients.domain import groups
from services.clients.domain.groups import Link
from services.kit.errors import ValidationError


def test_a_subsidiary_is_stored_as_the_other_side_of_a_parent():
    assert groups.relation(5, 9, "parent") == Link(5, 9, "parent")      # 9 is 5's parent
    assert groups.relation(9, 5, "subsidiary") == Link(5, 9, "parent")  # the same fact
    assert groups.relation(9, 5, "partner") == groups.relation(5, 9, "partner") == \
        Link(5, 9, "partner")


def test_bad_relations_are_refused_naming_the_field():
    with pytest.raises(ValidationError) as same:
        groups.relation(5, 5, "partner")
    assert (same.value.field, same.value.key) == ("related_id", "relation.self")
    with pytest.raises(ValidationError) as kind:
        groups.relation(5, 6, "cousin")
    assert kind.value.field == "kind"


def test_a_parent_loop_is_found():
    parents = {2: [1], 3: [2]}  # 3 -> 2 -> 1
    assert groups.would_cycle(Link(1, 3, "parent"), parents)      # 1's parent 3: a loop
    assert not groups.would_cycle(Link(4, 3, "parent"), parents)
    assert not groups.would_cycle(Link(1, 3, "partner"), parents)


def test_each_side_sees_its_own_view():
    rows = [(1, 5, 9, "parent"), (2, 7, 5, "parent"), (3, 5, 8, "partner")]
    assert groups.view(5, rows) == [
        {"id": 1, "client_id": 9, "kind": "parent"},
        {"id": 2, "client_id": 7, "kind": "subsidiary"},
        {"id": 3, "client_id": 8, "kind": "partner"}]
    assert groups.view(9, rows[:1]) == [{"id": 1, "client_id": 5, "kind": "subsidiary"}]
