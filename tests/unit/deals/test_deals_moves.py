"""The deal's status state machine and edit rules as pure functions (domain.move / edit /
deal_updated / stages_kept): what changes, in which order, which events."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.deals import domain
from services.deals.domain import Reason, StageRef, StatusRef
from services.kit.errors import ValidationError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OPEN = StatusRef(1, "new", "open")
WORK = StatusRef(2, "work", "open")
WON = StatusRef(3, "won", "won")
LOST = StatusRef(4, "lost", "lost")


@dataclass
class FakeDeal:
    id: int = 7
    name: str = "Поставка"
    client_id: int = 100
    client_name: str = "ООО Ромашка"
    manager_id: int | None = 5
    type_id: int | None = None
    amount: Decimal = Decimal("10.00")
    currency: str = "RUB"
    version: int = 3
    created_at: datetime = field(default_factory=lambda: NOW)
    loss_reason_id: int | None = None


def test_nothing_moves_when_status_and_stage_are_the_same() -> None:
    assert domain.move(FakeDeal(), OPEN, None, OPEN, None, user_id=1, now=NOW) is None


def test_an_open_move_records_the_status_and_emits_one_event() -> None:
    out = domain.move(FakeDeal(), OPEN, None, WORK, None, user_id=1, now=NOW)
    assert out is not None
    assert out.history == [("status", "new", "work")]
    assert out.fields == {"closed_at": None, "version": 4, "updated_by": 1}
    assert [e for e, _ in out.events] == ["deal_status_changed"]
    payload = out.events[0][1]
    assert (payload["from_status"], payload["to_status"], payload["version"]) == (
        "new", "work", 4)
    assert not out.enters_stage


def test_winning_stamps_closed_at_and_emits_deal_won() -> None:
    out = domain.move(FakeDeal(), WORK, None, WON, None, user_id=1, now=NOW,
                      by_rule="fully_paid")
    assert out is not None
    assert out.fields["closed_at"] == NOW
    assert [e for e, _ in out.events] == ["deal_status_changed", "deal_won"]
    assert out.events[1][1]["status"] == "won"
    assert out.events[0][1]["by_rule"] == "fully_paid"


def test_losing_keeps_the_reason_and_reopening_drops_it() -> None:
    lost = domain.move(FakeDeal(), WORK, None, LOST, None, user_id=1, now=NOW,
                       reason=Reason(9, "Дорого"), comment="бюджет")
    assert lost is not None
    assert lost.fields["loss_reason_id"] == 9 and lost.fields["loss_comment"] == "бюджет"
    assert lost.history[-1] == ("loss_reason", None, "Дорого")
    assert lost.events[-1][0] == "deal_lost"
    assert lost.events[-1][1]["reason"] == "Дорого"
    reopened = domain.move(FakeDeal(loss_reason_id=9), LOST, None, WORK, None, user_id=1,
                           now=NOW)
    assert reopened is not None
    assert reopened.fields["loss_reason_id"] is None
    assert reopened.fields["loss_comment"] is None
    assert reopened.fields["closed_at"] is None


def test_a_stage_change_within_a_status_enters_the_stage() -> None:
    out = domain.move(FakeDeal(), OPEN, StageRef(10, "brief"), OPEN, StageRef(11, "offer"),
                      user_id=None, now=NOW)
    assert out is not None
    assert out.history == [("stage", "brief", "offer")]
    assert out.enters_stage
    assert out.events[0][1]["to_stage"] == "offer"


def test_won_to_won_does_not_emit_won_again_nor_restamp() -> None:
    other_won = StatusRef(5, "won2", "won")
    out = domain.move(FakeDeal(), WON, None, other_won, None, user_id=1, now=NOW)
    assert out is not None
    assert "closed_at" not in out.fields
    assert [e for e, _ in out.events] == ["deal_status_changed"]


def test_an_edit_brings_the_new_clients_name_and_follows_the_expected_amount() -> None:
    deal = FakeDeal()
    cleaned = {"client_id": 200, "expected_amount": Decimal("25.00")}
    diff = domain.changes_between(domain.editable_fields(deal, Decimal("10.00")), cleaned)
    out = domain.edit(deal, diff, cleaned, user_id=1,
                      client={"id": 200, "name": "АО Лютик"})
    assert out.fields["client_name"] == "АО Лютик"
    assert out.changes["client_name"] == {"from": "ООО Ромашка", "to": "АО Лютик"}
    assert out.changes["amount"] == {"from": Decimal("10.00"), "to": Decimal("25.00")}
    assert out.fields["version"] == 4
    assert list(out.changes) == ["client_id", "expected_amount", "client_name", "amount"]


def test_a_payment_plan_keeps_the_amount_when_the_expected_one_changes() -> None:
    deal = FakeDeal(amount=Decimal("50.00"))
    cleaned = {"expected_amount": Decimal("25.00")}
    diff = domain.changes_between(domain.editable_fields(deal, Decimal("10.00")), cleaned)
    out = domain.edit(deal, diff, cleaned, user_id=1, budget=Decimal("50.00"), has_plan=True)
    assert "amount" not in out.changes and "amount" not in out.fields


def test_a_new_type_moves_the_stage() -> None:
    deal = FakeDeal()
    cleaned = {"type_id": 3}
    diff = domain.changes_between(domain.editable_fields(deal, Decimal("10.00")), cleaned)
    out = domain.edit(deal, diff, cleaned, user_id=1, old_stage=None,
                      new_stage=StageRef(11, "offer"))
    assert out.enters_stage
    assert out.changes["stage"] == {"from": None, "to": "offer"}


def test_deal_updated_names_the_previous_manager() -> None:
    payload = domain.deal_updated(FakeDeal(manager_id=6), {"manager_id": {"from": 5, "to": 6}},
                                  1, version=4, previous_manager_id=5)
    assert payload["manager_id"] == 6 and payload["previous_manager_id"] == 5
    assert payload["version"] == 4 and payload["changes"]["manager_id"]["to"] == 6
    assert domain.deal_updated(FakeDeal(), {}, None, version=1)["previous_manager_id"] == 5


def test_saving_a_type_drops_the_missing_stages_and_refuses_foreign_ones() -> None:
    assert domain.stages_kept({1, 2, 3}, [{"id": 1}, {"id": None}]) == {2, 3}
    with pytest.raises(ValidationError) as exc:
        domain.stages_kept({1}, [{"id": 9}])
    assert exc.value.details["key"] == "deal_type.stage_foreign"
    with pytest.raises(ValidationError) as used:
        domain.check_stages_dropped(2)
    assert used.value.details["field"] == "stages"
    domain.check_stages_dropped(0)


def test_the_call_back_text_names_the_number() -> None:
    assert "+74951234567" in domain.call_back_text("+74951234567")
