"""The deals table sorted by each column (search_deals ``sort``) on a real database: pages of
two, walked to the end, give every deal once and in the order the column promises (ties by
id, deals without a value last)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from services.deals.domain import SORT_KEYS
from services.kit.errors import ValidationError

DEALS = [  # name, amount, planned close date, manager
    ("Гамма", "500", "2027-03-01", 7), ("Альфа", "100", None, 8), ("Дельта", "500", None, 7),
    ("Бета", "900", "2027-01-15", None), ("Ель", "100", "2027-01-15", 9),
    ("Вега", "0", "2026-12-31", 8),
]


def walk(deals, sort, filters=None):
    seen, after = [], None
    while True:
        page = deals.call("deals", "search_deals", filters or {}, after=after, limit=2,
                          sort=sort)
        seen += [d["id"] for d in page["items"]]
        after = page["next_after"]
        if after is None:
            return seen
        assert len(seen) <= len(DEALS), "a page came back twice"


def expected(rows, value, descending):
    valued = sorted((r for r in rows if value(r) is not None),
                    key=lambda r: (value(r), r["id"]), reverse=descending)
    empty = sorted((r for r in rows if value(r) is None), key=lambda r: r["id"],
                   reverse=descending)
    return [r["id"] for r in valued + empty]


@pytest.fixture
def table(deals, directory):
    client = directory.client("ООО «Ромашка»")
    made = []
    for name, amount, close, manager in DEALS:
        data = {"name": name, "client_id": client["id"], "expected_amount": amount,
                "planned_close_on": close}
        if manager:
            data["manager_id"] = manager
        made.append(deals.call("deals", "create_deal", data, user_id=manager or 1))
    # another status for two of them, and a later edit so updated_at differs from creation
    deals.call("deals", "change_status", made[0]["id"], "won", user_id=7)
    deals.call("deals", "change_status", made[4]["id"], "won", user_id=9)
    deals.call("deals", "update_deal", made[2]["id"], {"name": "Дельта 2"}, user_id=7)
    return [deals.call("deals", "get_deal", d["id"]) for d in made]


def test_every_sort_key_pages_through_every_deal_in_its_order(deals, table):
    position = {s["code"]: s["position"] for s in deals.call("deals", "list_statuses")}
    values = {"name": lambda r: r["name"], "amount": lambda r: Decimal(r["amount"]),
              "created_at": lambda r: r["created_at"], "updated_at": lambda r: r["updated_at"],
              "planned_close_on": lambda r: r["planned_close_on"],
              "status": lambda r: position[r["status"]["code"]],
              "manager": lambda r: r["manager_id"]}
    assert set(values) == set(SORT_KEYS)
    for key, value in values.items():
        for descending in (False, True):
            sort = ("-" if descending else "") + key
            assert walk(deals, sort) == expected(table, value, descending), sort


def test_sorting_keeps_the_filters_and_the_default_is_newest_first(deals, table):
    mine = [r for r in table if r["manager_id"] == 7]
    assert walk(deals, "-amount", {"manager_id": 7}) == expected(
        mine, lambda r: Decimal(r["amount"]), True)
    assert walk(deals, None) == sorted((r["id"] for r in table), reverse=True)
    won = [r for r in table if r["status"]["code"] == "won"]
    assert walk(deals, "planned_close_on", {"status": "won"}) == expected(
        won, lambda r: r["planned_close_on"], False)


def test_an_unknown_sort_is_refused_naming_the_field(deals):
    for bad in ("client_name", "-", "amount; drop table deals"):
        with pytest.raises(ValidationError) as refused:
            deals.call("deals", "search_deals", {}, sort=bad)
        assert refused.value.field == "sort" and refused.value.key == "choice.invalid"
