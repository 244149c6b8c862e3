"""The gateway's copy of deals' reference lists (gateway/reference.py)."""
from __future__ import annotations

from typing import Any

from gateway.reference import KEPT, ReferenceLists


def page(revision: int, with_lists: bool, name: str = "Новая") -> dict[str, Any]:
    deal: dict[str, Any] = {"id": 1, "reference_revision": revision}
    if with_lists:
        deal.update(statuses=[{"code": "new", "name": name}], types=[], loss_reasons=[])
    return deal


def test_a_page_without_lists_gets_the_ones_held_for_its_revision() -> None:
    lists = ReferenceLists()
    assert lists.latest() is None
    assert lists.complete(page(3, True))
    assert lists.latest() == 3
    lean = page(3, False)
    assert lists.complete(lean)
    assert lean["statuses"] == [{"code": "new", "name": "Новая"}]
    assert lean["types"] == [] and lean["loss_reasons"] == []


def test_a_newer_revision_replaces_the_lists_and_an_unknown_one_asks_again() -> None:
    lists = ReferenceLists()
    lists.complete(page(3, True))
    lists.complete(page(4, True, name="Первичный контакт"))
    assert lists.latest() == 4
    lean = page(4, False)
    assert lists.complete(lean) and lean["statuses"][0]["name"] == "Первичный контакт"
    stranger = page(99, False)
    assert not lists.complete(stranger)
    assert "statuses" not in stranger


def test_only_the_last_few_revisions_are_kept() -> None:
    lists = ReferenceLists()
    for revision in range(1, KEPT + 3):
        lists.complete(page(revision, True))
    assert not lists.complete(page(1, False))
    assert lists.complete(page(KEPT + 2, False))


def test_a_page_shown_twice_does_not_share_the_outer_lists() -> None:
    lists = ReferenceLists()
    lists.complete(page(5, True))
    first, second = page(5, False), page(5, False)
    lists.complete(first)
    lists.complete(second)
    first["statuses"].append({"code": "extra"})
    assert len(second["statuses"]) == 1
