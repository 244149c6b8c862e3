"""The funnel's rules on hand-made histories (services.analytics.domain)."""
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.analytics import domain
from services.kit.errors import ValidationError

STATUSES = [
    {"code": "new", "name": "Новая", "position": 1, "kind": "open"},
    {"code": "talks", "name": "Переговоры", "position": 2, "kind": "open"},
    {"code": "offer", "name": "КП", "position": 3, "kind": "open"},
    {"code": "won", "name": "Успешно", "position": 4, "kind": "won"},
    {"code": "lost", "name": "Проиграна", "position": 5, "kind": "lost"},
]
LAYERS, KINDS = domain.funnel_layers(STATUSES)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=100)


def path(deal_id, *steps, amount="100.00"):
    """steps: (status, day) or (status, day, reason)."""
    moves = tuple(domain.Move(i + 1, s[0], T0 + timedelta(days=s[1]),
                              s[2] if len(s) > 2 else None) for i, s in enumerate(steps))
    return domain.Path(deal_id, moves, Decimal(amount))


def by_code(rows):
    return {r.code: r for r in rows}


def test_layers_are_open_statuses_in_order_then_won_and_lost_is_not_a_layer():
    assert [x.code for x in LAYERS] == ["new", "talks", "offer", "won"]


def test_a_deal_going_back_and_forth_is_counted_once_per_status():
    rows = by_code(domain.funnel(
        [path(1, ("new", 0), ("talks", 1), ("new", 2), ("talks", 3), ("offer", 4))],
        LAYERS, KINDS, NOW))
    assert [rows[c].reached for c in ("new", "talks", "offer", "won")] == [1, 1, 1, 0]
    assert rows["talks"].amount == Decimal("100.00")


def test_a_skipped_status_still_counts_as_passed():
    rows = by_code(domain.funnel([path(1, ("new", 0), ("offer", 1))], LAYERS, KINDS, NOW))
    assert rows["talks"].reached == 1


def test_lost_deal_is_attributed_to_the_last_open_status_with_its_reason():
    rows = by_code(domain.funnel(
        [path(1, ("new", 0), ("talks", 1), ("offer", 2), ("talks", 3), ("lost", 4, "Дорого")),
         path(2, ("new", 0), ("lost", 1, "Нет бюджета"), amount="50.00")],
        LAYERS, KINDS, NOW))
    assert rows["talks"].lost == 1 and rows["talks"].lost_reasons == {"Дорого": 1}
    assert rows["offer"].lost == 0
    assert rows["new"].lost == 1 and rows["new"].lost_amount == Decimal("50.00")
    assert rows["offer"].reached == 1  # furthest was offer, even though lost at talks


def test_conversions_drop_off_and_median_days():
    paths = [path(1, ("new", 0), ("talks", 2), ("offer", 3), ("won", 5)),
             path(2, ("new", 0), ("talks", 4), ("lost", 10, "Дорого")),
             path(3, ("new", 0), ("lost", 1, "Дорого")),
             path(4, ("new", 0), ("talks", 6))]
    rows = by_code(domain.funnel(paths, LAYERS, KINDS, NOW))
    assert [rows[c].reached for c in ("new", "talks", "offer", "won")] == [4, 3, 1, 1]
    assert rows["new"].conversion_next == Decimal("75.0")
    assert rows["talks"].conversion_next == Decimal("33.3")
    assert rows["offer"].conversion_first == Decimal("25.0")
    assert rows["won"].conversion_next is None
    assert rows["talks"].drop_off == 2
    # days in "new": 2, 4, 1, 6 -> median 3; "talks": 1, 6 and 94 (still there) -> 6
    assert rows["new"].median_days == Decimal("3.0")
    assert rows["talks"].median_days == Decimal("6.0")


def test_cohort_follows_deals_to_where_they_are_and_snapshot_counts_them_now():
    rows = domain.funnel([path(1, ("new", 0), ("talks", 1)), path(2, ("new", 0))],
                         LAYERS, KINDS, NOW)
    domain.snapshot(rows, [("talks", 5, Decimal("500.00")), ("lost", 2, Decimal("9.00"))])
    got = by_code(rows)
    assert (got["new"].reached, got["talks"].reached) == (2, 1)
    assert (got["new"].now_count, got["talks"].now_count) == (0, 5)
    assert got["talks"].now_amount == Decimal("500.00")


def test_bottleneck_is_the_lowest_conversion_and_any_drop_beyond_the_margin():
    now = domain.funnel([path(1, ("new", 0), ("talks", 1), ("offer", 2)),
                         path(2, ("new", 0), ("talks", 1)),
                         path(3, ("new", 0), ("talks", 1))], LAYERS, KINDS, NOW)
    before = domain.funnel([path(1, ("new", 0), ("talks", 1), ("offer", 2), ("won", 3)),
                            path(2, ("new", 0), ("talks", 1), ("offer", 2))],
                           LAYERS, KINDS, NOW)
    domain.mark_bottlenecks(now, before, Decimal("10"))
    got = by_code(now)
    assert got["offer"].bottleneck == ["lowest", "dropped"]  # 0% now, 50% before
    assert got["talks"].bottleneck == ["dropped"]  # 33.3% now, 100% before
    assert got["new"].bottleneck == []  # 100% both times


def test_a_small_fall_within_the_margin_is_not_a_bottleneck():
    now = domain.funnel([path(1, ("new", 0), ("talks", 1))] * 9 + [path(2, ("new", 0))],
                        LAYERS, KINDS, NOW)
    before = domain.funnel([path(1, ("new", 0), ("talks", 1))], LAYERS, KINDS, NOW)
    domain.mark_bottlenecks(now, before, Decimal("10"))
    assert "dropped" not in by_code(now)["new"].bottleneck


def test_lost_breakdown_by_status_and_reason():
    rows = domain.lost_breakdown(
        [path(1, ("new", 0), ("lost", 1, "Дорого")),
         path(2, ("new", 0), ("talks", 1), ("lost", 2, "Дорого"), amount="30.00"),
         path(3, ("new", 0), ("talks", 1), ("lost", 2, "Дорого"), amount="20.00"),
         path(4, ("new", 0), ("won", 1))], LAYERS, KINDS, NOW)
    assert rows == [{"status": "new", "reason": "Дорого", "count": 1, "amount": Decimal("100.00")},
                    {"status": "talks", "reason": "Дорого", "count": 2,
                     "amount": Decimal("50.00")}]


def test_a_type_with_stages_gives_its_own_stage_funnel():
    stages = [{"code": "brief", "name": "Бриф", "position": 1, "status": "new"},
              {"code": "design", "name": "Дизайн", "position": 2, "status": "new"},
              {"code": "signed", "name": "Подписан", "position": 3, "status": "won"},
              {"code": "refused", "name": "Отказ", "position": 4, "status": "lost"}]
    layers, kinds = domain.funnel_layers(STATUSES, stages)
    assert [x.code for x in layers] == ["brief", "design", "signed"]
    assert kinds["refused"] == "lost"


TODAY = date(2026, 6, 1)


def parse(**raw):
    return domain.parse_filters(raw, TODAY, type_ids=[1, 2], manager_ids=[7, 8],
                                departments={"Москва"})


def test_filters_default_to_ninety_days_and_give_the_previous_period_of_the_same_length():
    f = parse()
    assert (f.start, f.end) == (TODAY - timedelta(days=89), TODAY)
    prev = f.previous()
    assert (prev.end - prev.start) == (f.end - f.start) and prev.end == f.start - timedelta(1)


@pytest.mark.parametrize("raw, field, key", [
    ({"start": "2026-05-02", "end": "2026-05-01"}, "end", "period.end_before_start"),
    ({"start": "2020-01-01", "end": "2026-01-01"}, "start", "period.too_long"),
    ({"start": "01.05.2026"}, "start", "period.invalid_date"),
    ({"type_id": "9"}, "type_id", "filter.unknown_value"),
    ({"manager_id": "99"}, "manager_id", "filter.unknown_value"),
    ({"department": "Марс"}, "department", "filter.unknown_value"),
    ({"basis": "updated"}, "basis", "filter.unknown_value"),
    ({"colour": "red"}, "colour", "filter.unknown"),
])
def test_bad_filters_are_refused_naming_the_field(raw, field, key):
    with pytest.raises(ValidationError) as err:
        parse(**raw)
    assert err.value.details["field"] == field and err.value.details["key"] == key


def test_a_manager_sees_only_their_own_funnel_and_a_head_sees_everyones():
    f = parse(manager_id="8")
    assert domain.visible_manager(f, {"user_id": 7, "roles": ["manager"]}).manager_id == 7
    assert domain.visible_manager(f, {"user_id": 1, "roles": ["head"]}).manager_id == 8


def test_replay_rebuilds_moves_with_the_values_of_their_moment():
    t = [T0 + timedelta(days=d) for d in range(4)]
    deal = {"id": 1, "status": "won", "stage": None, "manager_id": 8, "type_id": None,
            "client_id": 3, "amount": "200.00", "created_at": t[0], "history": [
                {"field": "status", "old_value": "new", "new_value": "talks", "changed_at": t[1]},
                {"field": "manager_id", "old_value": "7", "new_value": "8", "changed_at": t[2]},
                {"field": "amount", "old_value": "100.00", "new_value": "200.00",
                 "changed_at": t[2]},
                {"field": "status", "old_value": "talks", "new_value": "won", "changed_at": t[3]},
            ]}
    moves = domain.replay(deal)
    assert [(m["to_status"], m["manager_id"], m["amount"]) for m in moves] == [
        ("new", 7, Decimal("100.00")), ("talks", 7, Decimal("100.00")),
        ("won", 8, Decimal("200.00"))]
    assert moves[1]["at"] == t[1] and moves[1]["from_status"] == "new"
