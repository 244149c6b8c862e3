"""The deals' summary rows on real PostgreSQL: after random histories delivered twice and
shuffled, the funnel, the medians, the lost deals and a layer's deals computed in SQL from
the summaries equal the ones walked move by move over the transitions (the reference)."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import case, func, literal, select, text, true
from sqlalchemy.orm import Session

from services.analytics import domain, store
from services.analytics.models import DealState, Transition, deal_count_moves
from tests.unit.analytics.test_funnel_maths import KINDS, LAYERS, STATUSES

TZ = ZoneInfo("Europe/Moscow")
NOW = datetime.now(UTC)


def events(seed: int, deals: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    made = []
    for deal_id in range(1, deals + 1):
        at = NOW - timedelta(days=60, hours=rng.randrange(500))
        status = rng.choice(["new", "talks"])
        common = {"deal_id": deal_id, "client_id": 501, "manager_id": rng.choice([7, 8]),
                  "type_id": None, "amount": f"{rng.randrange(100, 999)}.00"}
        made.append(("deal_created", {**common, "name": f"Сделка {deal_id}", "status": status,
                                      "stage": None, "version": 1,
                                      "created_at": at.isoformat()}))
        for version in range(2, rng.randrange(1, 7) + 1):
            after = rng.choice([s["code"] for s in STATUSES])
            at += timedelta(hours=rng.randrange(0, 200))
            made.append(("deal_status_changed", {
                **common, "from_status": status, "to_status": after,
                "to_status_kind": KINDS[after], "from_stage": None, "to_stage": None,
                "version": version, "changed_at": at.isoformat(),
                "loss_reason": rng.choice(["Цена", None]) if after == "lost" else None}))
            status = after
    return made


def apply(session: Session, delivered: list[tuple[str, dict[str, Any]]]) -> None:
    """The events as the projection's handlers apply them, one after the other."""
    for kind, data in delivered:
        if kind == "deal_created":
            store.deal_created(session, data, data["created_at"])
        else:
            store.status_changed(session, data, data["changed_at"])


def test_summaries_give_the_same_figures_as_the_transitions(session_of):
    delivered = events(11, 80)
    delivered = delivered + delivered
    random.Random(3).shuffle(delivered)
    writer = session_of("analytics")  # one connection; a transaction per delivery
    for one in delivered:
        with writer.begin():
            apply(writer, [one])
    filters = domain.parse_filters({}, NOW.astimezone(TZ).date(), type_ids=[],
                                   manager_ids=None, departments=())
    with session_of("analytics") as session:
        # the summaries SQL wrote are the ones the rebuild computes in Python
        for deal in session.scalars(select(DealState)):
            moves = session.execute(select(Transition.to_status, Transition.at,
                                           Transition.loss_reason)
                                    .where(Transition.deal_id == deal.deal_id)
                                    .order_by(Transition.seq)).all()
            expected = domain.summed([tuple(m) for m in moves])
            got = domain.Summed(deal.path, deal.seconds_codes, deal.seconds_values,
                                deal.last_at, deal.last_loss_reason)
            assert got._replace(seconds_values=[]) == expected._replace(seconds_values=[])
            assert got.seconds_values == pytest.approx(expected.seconds_values)
        walked = [p for _, p in store.paths(session, filters, TZ, None, False)]
        groups = store.groups(session, filters, TZ, None)
        medians = store.median_seconds(session, filters, TZ, None,
                                        domain.open_layer_codes(LAYERS, KINDS), NOW)
        assert len(walked) == 80 == sum(g.deals for g in groups)
        reference = domain.funnel(walked, LAYERS, KINDS, NOW)
        assert [r.reached for r in reference] != [0] * len(LAYERS)
        assert domain.funnel_of_groups(groups, medians, LAYERS, KINDS) == reference
        # the medians on a second session beside the groups: the same figures
        assert store.figures(session, filters, TZ, None, LAYERS, KINDS, NOW,
                             beside=lambda: Session(session.get_bind())) == (reference, 80)
        assert domain.lost_of_groups(groups, LAYERS, KINDS) == domain.lost_breakdown(
            walked, LAYERS, KINDS, NOW)
        amounts = {d.deal_id: d.amount for d, _ in store.paths(session, filters, TZ, None,
                                                                 False)}
        for index, layer in enumerate(LAYERS):
            behind = sorted((p for p in walked if domain.belongs(
                domain.summarize(p, LAYERS, KINDS, NOW), "cohort", index, layer.code)),
                key=lambda p: amounts[p.deal_id], reverse=True)
            listed = store.summarised(session, filters, TZ, None,
                                       reaching=domain.reaching(LAYERS, index), limit=500)
            assert [d.deal_id for d in listed] == [p.deal_id for p in behind], layer.code
            lost = store.summarised(session, filters, TZ, None, reason="Цена", limit=500,
                                     paths=domain.lost_paths(groups, LAYERS, KINDS,
                                                             layer.code, "Цена"))
            assert sorted(d.deal_id for d in lost) == sorted(
                p.deal_id for p in walked if domain.belongs(domain.summarize(
                    p, LAYERS, KINDS, NOW), "lost", index, layer.code, "Цена")), layer.code


def test_counts_kept_by_triggers_equal_the_deals_now_in_each_status(session_of):
    delivered = events(12, 60)
    random.Random(4).shuffle(delivered)
    writer = session_of("analytics")
    for i, (kind, data) in enumerate(delivered):
        with writer.begin():
            session = writer
            if kind == "deal_created":
                store.deal_created(session, data, data["created_at"])
            else:
                store.status_changed(session, data, data["changed_at"])
            if i % 25 == 0:
                store.compact_counts(session)  # folded midway, and moves after it
    filters = domain.parse_filters({}, NOW.astimezone(TZ).date(), type_ids=[],
                                   manager_ids=None, departments=())
    mine = domain.Filters(filters.start, filters.end, manager_id=7)
    with session_of("analytics") as session:
        for sliced, managers in ((filters, None), (mine, None), (filters, {8})):
            plain = session.execute(
                store._sliced(select(DealState.status, func.count(), func.sum(DealState.amount))
                               .group_by(DealState.status), sliced, managers)).all()
            counted = store.now_in_layers(session, sliced, managers, False)
            assert sorted(counted) == sorted((s, n, a) for s, n, a in plain)
            assert sum(n for _, n, _ in counted) > 0


def medians_before(session: Session, filters: domain.Filters, managers: set[int] | None,
                   codes: list[str], now: datetime) -> dict[str, float]:
    """The medians' statement as it was before issue 9's last round (the current visit
    added as ``seconds + CASE ... ELSE 0 END`` on every row, JIT left to the planner):
    the reference the present one must equal exactly."""
    spent = func.unnest(DealState.seconds_codes, DealState.seconds_values).table_valued(
        "code", "seconds").render_derived(name="spent")
    current = func.greatest(0, func.extract("epoch", literal(now) - DealState.last_at))
    seconds = spent.c.seconds + case(
        (spent.c.code == DealState.path[func.cardinality(DealState.path)], current), else_=0)
    row = session.execute(store.cohort(
        select(*[func.percentile_cont(0.5).within_group(seconds).filter(spent.c.code == c)
                 for c in codes]).select_from(DealState).join(spent, true())
        .where(spent.c.code.in_(codes)), filters, TZ, managers)).one()
    return {c: float(v) for c, v in zip(codes, row, strict=True) if v is not None}


def test_every_slice_has_the_figures_of_the_walked_transitions_and_the_medians_as_before(
        session_of):
    """Slices by manager, type, client, group, department and by closing: the medians equal
    the previous statement's to the bit, and the figures (side by side and one after the
    other) equal the ones walked over the transitions."""
    rng = random.Random(29)
    delivered = []
    for kind, data in events(17, 160):
        # spread the deals over two types, two clients and some still in their first status
        if data["deal_id"] % 3 == 0:
            data = {**data, "type_id": 3}
        if data["deal_id"] % 4 == 0:
            data = {**data, "client_id": 502}
        delivered.append((kind, data))
    writer = session_of("analytics")
    with writer.begin():
        writer.execute(text("INSERT INTO client_group_members (client_id, client_group_id,"
                            " version) VALUES (502, 9, 1)"))
        apply(writer, delivered)
    today = NOW.astimezone(TZ).date()
    now = NOW + timedelta(hours=rng.randrange(1, 50))
    slices: list[tuple[dict[str, Any], set[int] | None]] = [
        ({}, None), ({"manager_id": "7"}, None), ({"type_id": "3"}, None),
        ({"client_id": "502"}, None), ({"client_group_id": "9"}, None),
        ({}, {8}),  # a department: its managers
        ({"basis": "closed", "start": str(today - timedelta(days=60))}, None)]
    with session_of("analytics") as session:
        for raw, managers in slices:
            filters = domain.parse_filters(raw, today, type_ids=[3], manager_ids=None,
                                           departments=())
            codes = domain.open_layer_codes(LAYERS, KINDS)
            walked = [p for _, p in store.paths(session, filters, TZ, managers, False)]
            assert walked, raw
            medians = store.median_seconds(session, filters, TZ, managers, codes, now)
            assert medians == medians_before(session, filters, managers, codes, now), raw
            reference = (domain.funnel(walked, LAYERS, KINDS, now), len(walked))
            assert store.figures(session, filters, TZ, managers, LAYERS, KINDS,
                                 now) == reference, raw
            assert store.figures(session, filters, TZ, managers, LAYERS, KINDS, now,
                                 beside=lambda: Session(session.get_bind())
                                 ) == reference, raw
            session.rollback()


def test_settling_after_a_rebuild_folds_the_count_moves_and_keeps_the_snapshot(session_of):
    writer = session_of("analytics")
    with writer.begin():
        apply(writer, events(5, 30))
    filters = domain.parse_filters({}, NOW.astimezone(TZ).date(), type_ids=[],
                                   manager_ids=None, departments=())
    with session_of("analytics") as session:
        before = sorted(store.now_in_layers(session, filters, None, False))
        assert session.scalar(select(func.count()).select_from(deal_count_moves))
        session.rollback()
        store.settle(session.get_bind())
        assert not session.scalar(select(func.count()).select_from(deal_count_moves))
        assert sorted(store.now_in_layers(session, filters, None, False)) == before
        assert sum(n for _, n, _ in before) == 30
