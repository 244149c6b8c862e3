"""The replayable history in columns (``history_columns``) holds the same facts as the
page of dicts (``deals_with_history``), cut into pages by keyset."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from services.kit.errors import ValidationError


def as_dicts(answer: dict[str, Any]) -> list[dict[str, Any]]:
    columns, changes = answer["deals"], answer["history"]
    found, start = [], 0
    for i, count in enumerate(columns["history_count"]):
        deal = {k: v[i] for k, v in columns.items() if k != "history_count"}
        deal["history"] = [{k: changes[k][j] for k in changes}
                           for j in range(start, start + count)]
        start += count
        found.append(deal)
    return found


def same_facts(deal: dict[str, Any]) -> dict[str, Any]:
    """Moments as instants and money as Decimal, whatever text they travelled as; the
    columns hold the replayed facts only (no planned close date or source: the rebuild
    does not replay them)."""
    def moment(value: Any) -> Any:
        return datetime.fromisoformat(value) if value else None
    deal = {k: v for k, v in deal.items()
            if k not in ("planned_close_on", "source", "source_detail")}
    return {**deal, "amount": Decimal(deal["amount"]), "created_at": moment(deal["created_at"]),
            "closed_at": moment(deal["closed_at"]),
            "history": [{**h, "changed_at": moment(h["changed_at"])} for h in deal["history"]]}


def test_history_columns_hold_what_the_dict_pages_hold(deals, directory):
    client = directory.client("ООО «Ромашка»")
    reasons = deals.call("deals", "list_loss_reasons")
    made = []
    for i, path in enumerate([["qualification", "proposal", "won"], ["lost"], []]):
        deal = deals.call("deals", "create_deal", {"name": f"Сделка {i}",
                                                   "client_id": client["id"],
                                                   "expected_amount": "150.50"}, user_id=7)
        for status in path:
            extra = {"loss_reason_id": reasons[0]["id"]} if status == "lost" else {}
            deal = deals.call("deals", "change_status", deal["id"], status, user_id=7, **extra)
        made.append(deal)
    deals.call("deals", "update_deal", made[2]["id"], {"manager_id": 8}, user_id=7)

    pages, after = [], None
    while True:
        answer = deals.call("deals", "history_columns", after=after, limit=2)
        pages.append(answer)
        after = answer["next_after"]
        if after is None:
            break
    columns = [d for page in pages for d in as_dicts(page)]
    dicts = deals.call("deals", "deals_with_history", limit=10)["items"]
    assert [d["id"] for d in columns] == [d["id"] for d in made]
    assert [len(p["deals"]["id"]) for p in pages] == [2, 1]
    assert [same_facts(d) for d in columns] == [same_facts(d) for d in dicts]
    lost = next(d for d in columns if d["status"] == "lost")
    assert lost["loss_reason"] == reasons[0]["name"] and lost["closed_at"]
    assert [h["field"] for h in columns[0]["history"]].count("status") == 3


def test_history_columns_refuse_a_bad_page_naming_the_field(deals):
    with pytest.raises(ValidationError) as err:
        deals.call("deals", "history_columns", after="x")
    assert err.value.details["field"] == "after"


def test_history_columns_keep_each_deal_together_when_their_changes_interleave(
        deals, directory, session_of):
    """Changes made to several deals in turn lie interleaved in the table, the deal
    updated last lies after the others, and the first deal's first change is rewritten
    where no scan meets it first: the columns still hold each deal's changes together,
    oldest first, in the deals' order (the arrays are gathered in one sorted pass)."""
    client = directory.client("ООО «Василёк»")
    made = [deals.call("deals", "create_deal", {"name": f"Сделка {i}", "client_id": client["id"],
                                                "expected_amount": "10"}, user_id=7)
            for i in range(3)]
    for status in ("qualification", "proposal", "negotiation"):
        for deal in made:
            deals.call("deals", "change_status", deal["id"], status, user_id=7)
    deals.call("deals", "update_deal", made[0]["id"], {"manager_id": 8}, user_id=7)
    with session_of("deals") as db:
        db.execute(text("WITH moved AS (DELETE FROM deal_history WHERE id = (SELECT min(id)"
                        " FROM deal_history WHERE deal_id = :deal AND field = 'status')"
                        " RETURNING *) INSERT INTO deal_history SELECT * FROM moved"),
                   {"deal": made[0]["id"]})
        db.commit()

    answer = deals.call("deals", "history_columns", after=None, limit=10)
    columns = as_dicts(answer)
    dicts = deals.call("deals", "deals_with_history", limit=10)["items"]
    assert [d["id"] for d in columns] == [d["id"] for d in made]
    assert [same_facts(d) for d in columns] == [same_facts(d) for d in dicts]
    assert [[h["new_value"] for h in d["history"] if h["field"] == "status"]
            for d in columns] == [["qualification", "proposal", "negotiation"]] * 3
