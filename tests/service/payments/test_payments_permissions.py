"""Payments enforces the permission matrix (a manager plans and records money only on the
deals they manage; the accountant on any) and refuses plans for deals that do not exist."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.kit.entrypoints import rpc
from services.kit.errors import Forbidden, NotFound

ANNA, IVAN = 21, 22
ACTORS = {"anna": {"id": ANNA, "roles": ["manager"]}, "ivan": {"id": IVAN, "roles": ["manager"]},
          "head": {"id": 23, "roles": ["head"]}, "buh": {"id": 24, "roles": ["accountant"]}}
DUE = date.today() + timedelta(days=10)


@pytest.mark.parametrize("who,may", [("anna", True), ("ivan", False), ("head", True),
                                     ("buh", True)])
def test_planning_and_receiving_money_follow_the_matrix(payments, who, may):
    deal_id = payments.deal_of_client("7707083893", manager_id=ANNA)
    data = {"amount": "100.00", "due_date": str(DUE)}
    if not may:
        with pytest.raises(Forbidden):
            payments.call("add_planned_payment", deal_id, data, user_id=1, actor=ACTORS[who])
        planned = payments.plan(deal_id, "100.00", DUE)
        with pytest.raises(Forbidden):
            payments.call("mark_received", planned["id"], {"amount": "10.00"}, user_id=1,
                          actor=ACTORS[who])
        assert payments.call("deal_payments", deal_id)["receipts"] == []
        return
    planned = payments.call("add_planned_payment", deal_id, data, user_id=1, actor=ACTORS[who])
    received = payments.call("mark_received", planned["id"], {"amount": "10.00"}, user_id=1,
                             actor=ACTORS[who])
    assert received["receipt"]["amount"] == "10.00"


def test_a_plan_for_a_deal_that_does_not_exist_is_refused(payments, start_service):
    start_service(NoDeals)
    with pytest.raises(NotFound) as refused:
        payments.rpc.call("payments", "add_planned_payment", 987654321,
                          {"amount": "100.00", "due_date": str(DUE)}, user_id=1)
    assert refused.value.details.get("field") == "deal_id"
    assert payments.call("deal_payments", 987654321)["payments"] == []


class NoDeals:
    """Deals as it answers for a deal it never had."""

    name = "deals"

    @rpc
    def get_deal(self, deal_id: int) -> dict:
        raise NotFound(f"deal {deal_id} not found")
