"""The deals service enforces the permission matrix on every change it is asked for by a
person (the gateway sends ``actor``): a manager changes only the deals they manage."""
from __future__ import annotations

import pytest

from services.kit.errors import Forbidden

ANNA, IVAN, HEAD, BUH = 11, 12, 13, 14
ACTORS = {"anna": {"id": ANNA, "roles": ["manager"]}, "ivan": {"id": IVAN, "roles": ["manager"]},
          "head": {"id": HEAD, "roles": ["head"]}, "buh": {"id": BUH, "roles": ["accountant"]}}


@pytest.fixture
def annas_deal(deals, directory):
    client = directory.client("ООО «Права»")
    return deals.call("deals", "create_deal", {"name": "Права", "client_id": client["id"]},
                      user_id=ANNA, actor=ACTORS["anna"])


@pytest.mark.parametrize("who,may", [("anna", True), ("ivan", False), ("head", True),
                                     ("buh", False)])
def test_changing_a_deal_follows_the_matrix(deals, annas_deal, who, may):
    def rename() -> dict:
        return deals.call("deals", "update_deal", annas_deal["id"], {"name": f"Права {who}"},
                          user_id=ACTORS[who]["id"], actor=ACTORS[who])

    if may:
        assert rename()["name"] == f"Права {who}"
    else:
        with pytest.raises(Forbidden):
            rename()
        assert deals.call("deals", "get_deal", annas_deal["id"])["name"] == "Права"


def test_a_manager_cannot_take_over_or_move_anothers_deal(deals, annas_deal):
    with pytest.raises(Forbidden):
        deals.call("deals", "update_deal", annas_deal["id"], {"manager_id": IVAN},
                   user_id=IVAN, actor=ACTORS["ivan"])
    with pytest.raises(Forbidden):
        deals.call("deals", "change_status", annas_deal["id"], "proposal", user_id=IVAN,
                   actor=ACTORS["ivan"])
    assert deals.call("deals", "get_deal", annas_deal["id"])["manager_id"] == ANNA


def test_a_manager_creates_deals_for_themselves_only_and_the_accountant_none(deals, directory):
    client = directory.client("ООО «Новая»")
    with pytest.raises(Forbidden):
        deals.call("deals", "create_deal", {"name": "Чужая", "client_id": client["id"],
                                            "manager_id": ANNA},
                   user_id=IVAN, actor=ACTORS["ivan"])
    with pytest.raises(Forbidden):
        deals.call("deals", "create_deal", {"name": "Бух", "client_id": client["id"]},
                   user_id=BUH, actor=ACTORS["buh"])
    made = deals.call("deals", "create_deal", {"name": "Для Анны", "client_id": client["id"],
                                               "manager_id": ANNA},
                      user_id=HEAD, actor=ACTORS["head"])
    assert made["manager_id"] == ANNA


def test_a_call_from_another_service_has_no_actor_and_is_not_restricted(deals, annas_deal):
    assert deals.call("deals", "update_deal", annas_deal["id"], {"name": "Система"},
                      user_id=None)["name"] == "Система"
