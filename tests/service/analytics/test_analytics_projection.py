"""Events in, figures out; replays and shuffles change nothing; the rebuild from the deals
service's history gives the same funnel as the live projection."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from services.analytics import rebuild
from services.kit.errors import ValidationError
from tests.support.infra import wait_until

T0 = datetime.now(UTC) - timedelta(days=10)


def history(deal_id: int, path: list[str], manager: int = 7, reason: str | None = None,
            amount: str = "1000.00") -> list[tuple[str, dict[str, Any]]]:
    """The events deals publishes for a deal that goes through ``path``."""
    kinds = {"won": "won", "lost": "lost"}
    events = [("deal_created", {"deal_id": deal_id, "name": f"Сделка {deal_id}",
                                "client_id": 501, "client_name": "ООО «Альфа»",
                                "manager_id": manager, "status": path[0], "stage": None,
                                "type_id": None, "amount": amount, "version": 1,
                                "created_at": T0.isoformat()})]
    for version, (before, after) in enumerate(zip(path, path[1:], strict=False), start=2):
        events.append(("deal_status_changed", {
            "deal_id": deal_id, "client_id": 501, "manager_id": manager, "type_id": None,
            "from_status": before, "to_status": after, "to_status_kind": kinds.get(after, "open"),
            "from_stage": None, "to_stage": None, "amount": amount, "version": version,
            "changed_at": (T0 + timedelta(days=version)).isoformat(),
            "loss_reason": reason if after == "lost" else None}))
    return events


DEALS = [
    history(1, ["new", "qualification", "proposal", "qualification", "proposal", "won"]),
    history(2, ["new", "qualification", "lost"], reason="Цена"),
    history(3, ["new", "lost"], reason="Нет бюджета", manager=8),
    history(4, ["new", "qualification", "proposal"], amount="500.00"),
]
# by hand: reached new 4, qualification 3, proposal 2, negotiation 1 (deal 1 skipped it
# on the way to won), won 1; lost at qualification 1 (Цена), at new 1 (Нет бюджета)
EXPECTED = {"new": 4, "qualification": 3, "proposal": 2, "negotiation": 1, "contract": 1,
            "won": 1}


def figures(funnel: dict[str, Any]) -> dict[str, Any]:
    return {row["code"]: (row["reached"], row["amount"], row["lost"], row["lost_reasons"],
                          row["now_count"], row["conversion_next"]) for row in funnel["layers"]}


def test_events_in_give_the_funnel_computed_by_hand(stack):
    events = [e for deal in DEALS for e in deal]
    for event_type, data in events:
        stack.publish("deals", stack.envelope(event_type, data))
    stack.wait_applied(len(events))
    funnel = stack.funnel()
    rows = {row["code"]: row for row in funnel["layers"]}
    assert {code: rows[code]["reached"] for code in EXPECTED} == EXPECTED
    assert rows["new"]["amount"] == "3500.00"
    assert rows["qualification"]["lost_reasons"] == {"Цена": 1}
    assert rows["new"]["lost_reasons"] == {"Нет бюджета": 1}
    assert rows["proposal"]["now_count"] == 1 and rows["won"]["now_count"] == 1
    assert rows["new"]["conversion_next"] == "75.0"
    assert "lowest" in rows["proposal"]["bottleneck"]  # 2 -> 1: 50%, the lowest


def test_same_events_twice_and_shuffled_give_the_same_funnel(stack):
    envelopes = [stack.envelope(t, d) for deal in DEALS for t, d in deal]
    # the same envelopes again (the inbox skips them) and the same facts republished
    # under new ids (older versions change nothing), all in a shuffled order
    republished = [stack.envelope(e["type"], e["data"]) for e in envelopes]
    batch = envelopes + envelopes + republished
    random.Random(9).shuffle(batch)
    for body in batch:
        stack.publish("deals", body)
    stack.wait_applied(len(envelopes) + len(republished))
    got = figures(stack.funnel())
    assert {code: got[code][0] for code in EXPECTED} == EXPECTED
    assert got["qualification"][2:4] == (1, {"Цена": 1})
    assert got["proposal"][4] == 1  # deal 4 sits in proposal, whatever order came


def test_a_manager_sees_only_their_own_deals_and_cannot_widen_it(stack):
    for event_type, data in [e for deal in DEALS for e in deal]:
        stack.publish("deals", stack.envelope(event_type, data))
    stack.wait_applied(sum(len(d) for d in DEALS))
    mine = stack.funnel(viewer={"user_id": 8, "roles": ["manager"]})
    assert mine["deals"] == 1
    widened = stack.funnel(manager_id="7", viewer={"user_id": 8, "roles": ["manager"]})
    assert widened["deals"] == 1 and widened["filters"]["manager_id"] == 8


@pytest.mark.parametrize("filters, field", [
    ({"start": "2026-05-02", "end": "2026-05-01"}, "end"),
    ({"start": "2019-01-01", "end": "2026-01-01"}, "start"),
    ({"type_id": "999"}, "type_id"),
])
def test_bad_filters_are_a_validation_error_naming_the_field(stack, filters, field):
    with pytest.raises(ValidationError) as err:
        stack.funnel(**filters)
    assert err.value.details["field"] == field


def test_rebuild_from_deals_history_equals_the_live_projection(stack, db_url):
    call = stack.rpc.call
    reasons = call("deals", "list_loss_reasons")
    made = []
    for i, path in enumerate([["qualification", "proposal", "qualification", "won"],
                              ["qualification", "lost"], ["proposal"], [], ["lost"]]):
        deal = call("deals", "create_deal", {"name": f"Сделка {i}", "client_id": 501,
                                             "expected_amount": f"{(i + 1) * 100}.00"},
                    user_id=7)
        for status in path:
            extra = {"loss_reason_id": reasons[i % len(reasons)]["id"]} if status == "lost" \
                else {}
            deal = call("deals", "change_status", deal["id"], status, user_id=7, **extra)
        made.append(deal)
    call("deals", "update_deal", made[2]["id"], {"manager_id": 8}, user_id=7)
    moves = 5 + 3 + 2 + 1 + 2  # each deal's creation and its status changes
    wait_until(lambda: stack.counts()[1] >= moves and stack.counts()[2] >= moves + 1,
               timeout=20, message="the live projection")
    live = stack.funnel()
    lost_live = call("analytics", "lost_deals", filters={}, viewer={"user_id": 1,
                                                                     "roles": ["admin"]})
    engine = create_engine(db_url("analytics"))
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE transitions, deals"))
    factory = sessionmaker(engine)
    assert rebuild.rebuild(call, factory, page=2) == len(made)
    assert figures(stack.funnel()) == figures(live)
    assert rebuild.rebuild(call, factory, page=3) == len(made)  # again: the same rows
    assert figures(stack.funnel()) == figures(live)
    assert call("analytics", "lost_deals", filters={},
                viewer={"user_id": 1, "roles": ["admin"]})["rows"] == lost_live["rows"]
    assert stack.counts()[1] == moves
    engine.dispose()


def test_deals_behind_a_layer_are_listed_with_days_in_status(stack):
    for event_type, data in [e for deal in DEALS for e in deal]:
        stack.publish("deals", stack.envelope(event_type, data))
    stack.wait_applied(sum(len(d) for d in DEALS))
    reached = stack.rpc.call("analytics", "layer_deals", "proposal", "cohort", filters={},
                             viewer={"user_id": 1, "roles": ["head"]})
    assert sorted(d["deal_id"] for d in reached["deals"]) == [1, 4]
    lost = stack.rpc.call("analytics", "layer_deals", "qualification", "lost", filters={},
                          viewer={"user_id": 1, "roles": ["head"]})
    assert [d["deal_id"] for d in lost["deals"]] == [2]
    with pytest.raises(ValidationError):
        stack.rpc.call("analytics", "layer_deals", "nowhere", "cohort", filters={},
                       viewer={"user_id": 1, "roles": ["head"]})



def test_export_gives_the_funnel_and_each_layers_deals_from_one_pass(stack):
    for event_type, data in [e for deal in DEALS for e in deal]:
        stack.publish("deals", stack.envelope(event_type, data))
    stack.wait_applied(sum(len(d) for d in DEALS))
    head = {"user_id": 1, "roles": ["head"]}
    export = stack.rpc.call("analytics", "funnel_export", filters={}, viewer=head)
    per_layer = export.pop("layer_deals")
    assert export == stack.rpc.call("analytics", "funnel", filters={}, viewer=head)
    assert list(per_layer) == [row["code"] for row in export["layers"]]
    for code, deals in per_layer.items():
        alone = stack.rpc.call("analytics", "layer_deals", code, "cohort", filters={},
                               viewer=head)
        assert deals == alone["deals"], code
    assert sorted(d["deal_id"] for d in per_layer["proposal"]) == [1, 4]


def test_the_funnel_is_sliced_by_client_group(stack):
    events = [e for deal in DEALS for e in deal]
    for event_type, data in events:
        stack.publish("deals", stack.envelope(event_type, data))
    stack.wait_applied(len(events))
    stack.publish("clients", stack.envelope("client_group_changed", {
        "client_id": 501, "client_group_id": 77, "previous_group_id": None, "version": 2}))
    wait_until(lambda: stack.funnel(client_group_id="77")["deals"] == len(DEALS),
               timeout=20, message="the client's deals in group 77")
    rows = {row["code"]: row for row in stack.funnel(client_group_id="77")["layers"]}
    assert {code: rows[code]["reached"] for code in EXPECTED} == EXPECTED
    assert rows["proposal"]["now_count"] == 1  # the snapshot is sliced too
    other = stack.funnel(client_group_id="78")
    assert other["deals"] == 0 and all(r["now_count"] == 0 for r in other["layers"])
    assert other["filters"]["client_group_id"] == 78
    with pytest.raises(ValidationError) as err:
        stack.funnel(client_group_id="x")
    assert err.value.details["field"] == "client_group_id"
