"""The weighted pipeline and manager performance summed in the database
(pipeline_store.py, performance_store.py) against their references (winrate.open_estimates
with forecast.pipeline; activity.figures with performance.performance) on the same rows of
a real read model, edge cases included: bucket and month boundaries, planned close dates
past, present and beyond the months shown, deals without a planned date (their type's
typical cycle, or every won deal's), hand-set probabilities, statuses with too little
history, a manager change, deals won or lost dropping out, tasks, calls and receipts in
and out of the period."""
from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.analytics import (
    activity,
    forecast,
    performance_store,
    pipeline_store,
    winrate,
)

TZ = ZoneInfo("Europe/Moscow")
KINDS = {"new": "open", "qualification": "open", "proposal": "open", "negotiation": "open",
         "contract": "open", "won": "won", "lost": "lost"}
OPEN = [c for c, k in KINDS.items() if k == "open"]
WON = ["won"]
# "contract" is left out of what the estimator learns: its deals have no estimate
LEARNT_ORDER = ["new", "qualification", "proposal", "negotiation"]
PEOPLE = {7: "Север", 8: "Север", 9: "Юг", 10: ""}
NOW = datetime.now(UTC).replace(microsecond=0)
AMOUNTS = [Decimal(a) for a in ("10000.49", "10000.50", "10000.51", "9999.99", "100000.50",
                                "100000.49", "1000000.49", "1000000.50", "0.00", "-5.00",
                                "0.01", "2500.25")]


def fill(s: Session, seed: int = 7, deals: int = 420) -> None:
    rng = random.Random(seed)
    rows, facts, moves = [], [], []
    for i in range(1, deals + 1):
        status = rng.choice([*OPEN, *OPEN, "won", "won", "lost"])
        type_id = rng.choice([None, 1, 1, 2, 3]) if i % 11 else 3
        created: datetime | None = NOW - timedelta(seconds=rng.randrange(0, 400 * 86400))
        if i % 23 == 0:  # age exactly on a bucket's edge, and a microsecond past it
            created = NOW - timedelta(days=rng.choice([7, 8, 30, 31, 90, 180]),
                                      microseconds=rng.choice([0, 1, -1]))
        if status in OPEN and i % 37 == 0:
            created = None
        closed = None
        if status in ("won", "lost") and created is not None:
            closed = min(NOW, created + timedelta(seconds=rng.randrange(3600, 90 * 86400)))
        amount = AMOUNTS[i // 3 % len(AMOUNTS)] if i % 3 == 0 else Decimal(
            rng.randrange(100, 300_000_000)) / 100
        rows.append({"deal_id": i, "name": f"Сделка {i}", "client_id": 1000 + i % 40,
                     "client_name": f"Клиент {i % 40}", "manager_id":
                     rng.choice([None, 7, 8, 9, 10, 11]) if i % 5 else 7,
                     "type_id": type_id, "status": status, "amount": amount,
                     "created_at": created, "closed_at": closed,
                     "client_group_id": (i % 40) % 4 or None})
        if i % 2:
            planned = rng.choice([None, NOW.date() - timedelta(days=40), NOW.date(),
                                  NOW.date() + timedelta(days=rng.randrange(1, 400))])
            facts.append({"deal_id": i, "source": rng.choice([None, "", "form", "call",
                                                              "email", "telepathy"]),
                          "client_kind": rng.choice([None, "", "company", "person"]),
                          "client_group_id": rng.choice([None, 1, 2]),
                          "manual": rng.choice([None] * 6 + [0, 35, 100]),
                          "planned": planned})
        if created is not None:
            moves.append({"deal_id": i, "seq": 1, "from": None, "to": "new", "at": created})
            if i % 3:
                at = created + timedelta(seconds=rng.randrange(-3600, 20 * 86400))
                last = "lost" if status == "lost" else rng.choice(OPEN)
                moves.append({"deal_id": i, "seq": 2, "from": rng.choice(LEARNT_ORDER),
                              "to": last, "at": at})
    s.execute(text(
        "INSERT INTO deals (deal_id, version, rebuilt_version, name, client_id, client_name,"
        " manager_id, type_id, status, amount, currency, created_at, closed_at,"
        " client_group_id) VALUES (:deal_id, 2, 0, :name, :client_id, :client_name,"
        " :manager_id, :type_id, :status, :amount, 'RUB', :created_at, :closed_at,"
        " :client_group_id)"), rows)
    s.execute(text(
        "INSERT INTO deal_facts (deal_id, source, client_kind, client_group_id,"
        " manual_probability, planned_close_on) VALUES (:deal_id, :source, :client_kind,"
        " :client_group_id, :manual, :planned)"), facts)
    s.execute(text(
        "INSERT INTO transitions (deal_id, seq, from_status, to_status, at, amount)"
        " VALUES (:deal_id, :seq, :from, :to, :at, 0)"), moves)
    # the client dimension knows some clients (one without a group: the deal's own group
    # is not used then)
    s.execute(text(
        "INSERT INTO client_group_members (client_id, client_group_id, version, kind)"
        " SELECT 1000 + g, CASE WHEN g % 3 = 0 THEN NULL ELSE g % 2 + 1 END, 1,"
        " CASE WHEN g % 2 = 0 THEN 'company' END FROM generate_series(0, 19) AS g"))
    fill_activity(s, rng, deals)
    winrate.recount(s, KINDS, LEARNT_ORDER)


def fill_activity(s: Session, rng: random.Random, deals: int) -> None:
    tasks, calls, receipts = [], [], []
    for n in range(1, 300):
        deal = rng.choice([None, *range(1, deals + 1)])
        done = rng.random() < 0.4
        tasks.append({"id": n, "deal_id": deal, "assignee": rng.choice([None, 7, 8, 9, 99]),
                      "due": rng.choice([None, NOW + timedelta(days=rng.randrange(-30, 30))]),
                      "completed": (NOW - timedelta(seconds=rng.randrange(0, 300 * 86400))
                                    if done else None)})
    for n in range(1, 300):
        calls.append({"id": n, "deal_id": rng.choice([None, *range(1, deals + 1)]),
                      "direction": rng.choice(["inbound", "outbound", "outbound", "internal"]),
                      "outcome": rng.choice([None, "answered", "missed", "busy"]),
                      "at": NOW - timedelta(seconds=rng.randrange(0, 200 * 86400))})
    for n in range(1, 400):
        on = (NOW - timedelta(days=rng.randrange(-5, 120))).date().isoformat()
        receipts.append({"id": n, "deal_id": rng.randrange(1, deals + 1),
                         "amount": Decimal(rng.randrange(1, 10_000_00)) / 100,
                         "on": rng.choice([on, on, on + "T10:00:00", ""])})
    s.execute(text("INSERT INTO tasks (reminder_id, deal_id, assignee_id, due_at,"
                   " completed_at) VALUES (:id, :deal_id, :assignee, :due, :completed)"),
              tasks)
    s.execute(text("INSERT INTO calls (call_id, revision, direction, outcome, started_at,"
                   " deal_id) VALUES (:id, 1, :direction, :outcome, :at, :deal_id)"), calls)
    s.execute(text("INSERT INTO receipts (receipt_id, deal_id, amount, currency,"
                   " received_on) VALUES (:id, :deal_id, :amount, 'RUB', :on)"), receipts)


def reference_pipeline(s: Session, today: date, months: int, manager: int | None,
                       managers: list[int] | None) -> dict[str, Any]:
    """What the weighted pipeline answered before it was summed in the database."""
    rows = winrate.open_estimates(s, OPEN, NOW, manager, managers)
    deals = [forecast.OpenDeal(r["deal_id"], r["manager_id"], r["type_id"], r["amount"],
                               r["created_at"], r["percent"], r["manual"],
                               r["planned_close_on"]) for r in rows]
    answer = forecast.pipeline(deals, winrate.typical_cycles(s, WON), today, PEOPLE, months,
                               listed=200)
    named = {r["deal_id"]: (r["name"], r["client_name"]) for r in rows}
    for row in answer["deals"]:
        row["name"], row["client_name"] = named[row["deal_id"]]
    return answer


def summed_pipeline(s: Session, today: date, months: int, manager: int | None,
                    managers: list[int] | None) -> dict[str, Any]:
    return pipeline_store.weighted_pipeline(s, OPEN, WON, NOW, today, PEOPLE, months, 200,
                                            manager, managers)


SLICES = [(6, None, None), (1, None, None), (24, None, None), (3, 7, None),
          (6, None, [7, 8]), (6, None, [12])]


@pytest.fixture
def db(session_of: Callable[[str], Session]) -> Any:
    with session_of("analytics") as s:
        fill(s)
        yield s


def test_the_summed_pipeline_equals_the_reference_on_every_slice(db):
    today = NOW.astimezone(TZ).date()
    for months, manager, managers in SLICES:
        expected = reference_pipeline(db, today, months, manager, managers)
        assert summed_pipeline(db, today, months, manager, managers) == expected, (
            months, manager, managers)
    whole = reference_pipeline(db, today, 6, None, None)
    # the data reach every rule: several managers and departments, deals after the months
    # shown, hand-set and missing probabilities, both dating bases
    assert len(whole["managers"]) >= 5 and len(whole["departments"]) == 2
    assert whole["total"][forecast.LATER]["deals"] > 0
    assert whole["unestimated"]["deals"] > 0
    assert {d["basis"] for d in whole["deals"]} == {"planned", "cycle"}
    assert any(d["manual"] for d in whole["deals"])
    assert len({d["cycle_days"] for d in whole["deals"] if d["basis"] == "cycle"}) >= 2


def test_a_manager_change_and_closed_deals_move_the_summed_pipeline_as_the_reference(db):
    today = NOW.astimezone(TZ).date()
    before = summed_pipeline(db, today, 6, None, None)
    biggest = before["deals"][0]
    # a manager no deal had: a profile the remembered ones do not hold
    moved_to = 13
    db.execute(text("UPDATE deals SET manager_id = :m WHERE deal_id = :d"),
               {"m": moved_to, "d": biggest["deal_id"]})
    after = summed_pipeline(db, today, 6, None, None)
    assert after == reference_pipeline(db, today, 6, None, None)
    [mine] = [m for m in after["managers"] if m["manager_id"] == moved_to]
    assert mine["weighted"] > 0
    # the new profile was estimated, not counted apart as having no estimate
    assert after["unestimated"] == before["unestimated"]
    # the second and third biggest are won and lost now: they leave the pipeline
    gone = [d["deal_id"] for d in after["deals"][1:3]]
    db.execute(text("UPDATE deals SET status = CASE WHEN deal_id = :a THEN 'won'"
                    " ELSE 'lost' END, closed_at = now() WHERE deal_id IN (:a, :b)"),
               {"a": gone[0], "b": gone[1]})
    closed = summed_pipeline(db, today, 6, None, None)
    assert closed == reference_pipeline(db, today, 6, None, None)
    assert not {d["deal_id"] for d in closed["deals"]} & set(gone)
    deals = sum(c["deals"] for c in closed["total"].values())
    assert deals == sum(c["deals"] for c in after["total"].values()) - 2


def test_a_planned_date_and_the_typical_cycle_date_a_deal_as_the_reference(db):
    """One deal walked through each way of dating it, each answer compared."""
    today = NOW.astimezone(TZ).date()
    db.execute(text("UPDATE deals SET status = 'proposal', manager_id = 12, type_id = 2,"
                    " created_at = :c WHERE deal_id = 1"), {"c": NOW - timedelta(days=3)})
    db.execute(text("DELETE FROM deal_facts WHERE deal_id = 1"))
    for planned in (None, today - timedelta(days=1), today, today + timedelta(days=700)):
        if planned is not None:
            db.execute(text("INSERT INTO deal_facts (deal_id, planned_close_on) VALUES"
                            " (1, :p) ON CONFLICT (deal_id) DO UPDATE SET"
                            " planned_close_on = :p"), {"p": planned})
        summed = summed_pipeline(db, today, 6, None, [12])
        assert summed == reference_pipeline(db, today, 6, None, [12]), planned
        [deal] = summed["deals"]
        assert deal["basis"] == ("cycle" if planned is None else "planned")
        if planned is not None and planned > today + timedelta(days=400):
            assert deal["month"] == forecast.LATER


PERIODS = [(30, 0), (1, 0), (120, 0), (7, -10), (400, 0)]


def test_the_summed_manager_performance_equals_the_reference(db):
    today = NOW.astimezone(TZ).date()
    seen = []
    for days, shift in PERIODS:
        end_day = today - timedelta(days=shift)
        start = datetime.combine(end_day - timedelta(days=days - 1), datetime.min.time(), TZ)
        end = datetime.combine(end_day + timedelta(days=1), datetime.min.time(), TZ)
        for managers, group in ((None, None), ({7, 8}, None), (None, 1), ({9}, 2),
                                (set(), None)):
            expected = activity.figures(db, KINDS, start, end, NOW, managers, group)
            assert performance_store.figures(db, KINDS, start, end, NOW, managers,
                                             group) == expected, (days, managers, group)
            seen.extend(expected)
    # every figure met a non-zero value somewhere (else the comparison proves little)
    for name in ("created", "won", "lost", "won_amount", "received", "open_without_task",
                 "overdue_tasks", "calls_made", "calls_missed"):
        assert any(row[name] for row in seen), name
    for name in ("conversion", "avg_cycle_days", "median_cycle_days", "first_response_hours"):
        assert any(row[name] is not None for row in seen), name
    assert any(row["manager_id"] is None for row in seen)
    assert any(row["manager_id"] == 99 for row in seen)  # an assignee who has no deals
