"""Pure rules of deals (services/deals/domain.py) and of the deal feed (gateway/feed.py)."""
from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from gateway import feed
from services.deals import domain
from services.deals.domain import Process, Stage
from services.kit.errors import ValidationError

MOSCOW = ZoneInfo("Europe/Moscow")


def process(simple: bool = False) -> Process:
    kinds = {1: "open", 2: "open", 3: "open", 4: "won", 5: "lost"}
    return Process(simple=simple, stages=tuple(
        Stage(i, code, code.title(), i, status, kinds[status])
        for i, (code, status) in enumerate([("lead", 1), ("offer", 2), ("talks", 2),
                                            ("contract", 3), ("paid", 4), ("lost", 5)],
                                           start=10)))


def test_a_process_refuses_skipping_a_stage_and_names_the_next_one():
    p = process()
    with pytest.raises(domain.MoveRefused) as refused:
        domain.check_stage_move(p, p.by_code("lead"), p.by_code("contract"))
    assert refused.value.field == "stage" and refused.value.details["next_stage"] == "offer"


def test_a_process_moves_back_anywhere_and_to_a_loss_from_anywhere():
    p = process()
    moves = [("contract", "lead"), ("lead", "lost"), ("offer", "talks")]
    assert [domain.check_stage_move(p, p.by_code(a), p.by_code(b)) for a, b in moves] == \
        [None, None, None]


def test_a_simple_type_moves_freely_where_a_process_would_refuse():
    simple, strict = process(simple=True), process()
    assert domain.check_stage_move(simple, simple.by_code("lead"), simple.by_code("paid")) is None
    with pytest.raises(domain.MoveRefused):
        domain.check_stage_move(strict, strict.by_code("lead"), strict.by_code("paid"))


def test_a_won_deal_is_reopened_before_it_is_won_another_way():
    p = Process(simple=False, stages=(Stage(1, "open", "Open", 0, 1),
                                      Stage(2, "sold", "Sold", 1, 4, "won"),
                                      Stage(3, "renewed", "Renewed", 2, 4, "won")))
    with pytest.raises(domain.MoveRefused):
        domain.check_stage_move(p, p.by_code("sold"), p.by_code("renewed"))


def test_dropping_on_a_status_picks_the_stage_in_the_direction_of_travel():
    p = process()
    assert domain.stage_for_status(p, p.by_code("lead"), 2).code == "offer"
    assert domain.stage_for_status(p, p.by_code("contract"), 2).code == "talks"
    assert domain.stage_for_status(p, p.by_code("talks"), 2).code == "talks"
    assert domain.stage_for_status(Process(), None, 2) is None
    with pytest.raises(domain.MoveRefused) as refused:
        domain.stage_for_status(p, None, 77, "Пауза")
    assert "Пауза" in refused.value.message and refused.value.field == "status"


def test_stage_tasks_go_to_the_manager_a_role_or_a_named_user_with_their_offsets():
    now = datetime(2026, 1, 1, 9, tzinfo=UTC)
    stage = Stage(1, "a", "A", 0, 1, tasks=(
        {"text": "call", "assignee": "manager", "due_hours": "2"},
        {"text": "sign", "assignee": "role:lawyer", "due_hours": "24"},
        {"text": "check", "assignee": "user:42", "due_hours": "0.5"}))
    specs = domain.stage_tasks(stage, now, manager_id=7)
    assert [(s.assignee_id, s.assignee_role, s.due_at - now) for s in specs] == [
        (7, None, timedelta(hours=2)), (None, "lawyer", timedelta(days=1)),
        (42, None, timedelta(minutes=30))]


def test_a_rule_names_the_stage_it_moves_to():
    p = process()
    stage = Stage(13, "contract", "Contract", 13, 3, rules=(
        {"on": "fully_paid", "to_stage": "paid"},))
    assert domain.rule_target(p, stage, "fully_paid").code == "paid"
    assert domain.rule_target(p, stage, "payment_received") is None


def test_a_loss_needs_an_active_reason():
    assert domain.require_loss_reason("open", None, []) is None
    with pytest.raises(ValidationError) as missing:
        domain.require_loss_reason("lost", None, [1])
    assert missing.value.field == "loss_reason_id"
    with pytest.raises(ValidationError):
        domain.require_loss_reason("lost", 9, [1])
    assert domain.require_loss_reason("lost", "1", [1]) == 1


def test_line_amounts_round_half_up_to_kopecks_and_add_up_exactly():
    lines = domain.validate_lines([
        {"name": "A", "quantity": "3", "unit_price": "0.10", "discount": "0"},
        {"name": "B", "quantity": "1,5", "unit_price": "99.99", "discount": "12.5"}])
    assert [x["amount"] for x in lines] == [Decimal("0.30"), Decimal("131.24")]
    assert domain.lines_total(lines) == Decimal("131.54")


def test_line_errors_name_the_line_and_the_field():
    for line, field in (({"name": "A", "unit_price": 1.5}, "lines.0.unit_price"),
                        ({"name": "A", "unit_price": "1", "quantity": "0.0001"},
                         "lines.0.quantity"),
                        ({"name": "", "unit_price": "1"}, "lines.0.name"),
                        ({"name": "A", "unit_price": "1", "kind": "x"}, "lines.0.kind")):
        with pytest.raises(ValidationError) as refused:
            domain.validate_lines([line])
        assert refused.value.field == field


def test_a_payment_plan_splits_to_the_kopeck_and_keeps_month_ends():
    plan = domain.split_plan(Decimal("100.00"), 3, date(2026, 1, 31))
    assert plan == [(Decimal("33.33"), date(2026, 1, 31)), (Decimal("33.33"), date(2026, 2, 28)),
                    (Decimal("33.34"), date(2026, 3, 31))]
    assert sum(a for a, _ in plan) == Decimal("100.00")
    with pytest.raises(ValidationError):
        domain.split_plan(Decimal("0.00"), 2, date(2026, 1, 1))


def test_the_amount_is_the_payment_plan_once_there_is_one():
    assert domain.effective_amount(Decimal("10"), Decimal("0"), False) == Decimal("10")
    assert domain.effective_amount(Decimal("10"), Decimal("7"), True) == Decimal("7")


def test_a_reminder_time_without_an_offset_is_in_the_company_time_zone():
    cleaned = domain.validate_reminder({"text": "x", "due_at": "2026-05-06T10:30"}, MOSCOW, 3)
    assert cleaned["due_at"] == datetime(2026, 5, 6, 7, 30, tzinfo=UTC)
    assert cleaned["assignee_id"] == 3


def test_only_a_missed_inbound_call_from_a_known_contact_asks_for_a_call_back():
    base = {"direction": "inbound", "outcome": "missed", "contact_id": 5}
    assert domain.needs_call_back(base)
    assert not domain.needs_call_back({**base, "outcome": "answered"})
    assert not domain.needs_call_back({**base, "direction": "outbound"})
    assert not domain.needs_call_back({**base, "contact_id": None})


def test_filters_are_parsed_from_a_query_string_and_errors_name_the_field():
    f = domain.parse_filter({"manager_id": "7", "status": "new,won", "has_task": "no",
                             "amount_min": "1 000,50", "created_from": "2026-01-01"})
    assert (f.manager_id, f.statuses, f.has_task, f.amount_min) == \
        (7, ("new", "won"), False, Decimal("1000.50"))
    with pytest.raises(ValidationError) as reversed_range:
        domain.parse_filter({"amount_min": "10", "amount_max": "5"})
    assert reversed_range.value.field == "amount_max"


def test_deal_changes_record_only_what_differs():
    assert domain.changes_between({"name": "A", "manager_id": 1},
                                  {"name": "A", "manager_id": 2}) == \
        {"manager_id": {"from": 1, "to": 2}}


def test_images_are_recognised_by_their_bytes_not_their_name():
    assert feed.sniff_image(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert feed.sniff_image(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert feed.sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert feed.sniff_image(b"<svg xmlns=...") is None
    assert feed.sniff_image(b"<html>") is None


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(ValidationError) as refused:
        feed.store(io.BytesIO(b"x" * 2048), "big.bin", tmp_path, limit=1024)
    assert refused.value.field == "files"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    stored = feed.store(io.BytesIO(b"\x89PNG\r\n\x1a\nrest"), "../../etc/passwd.png", tmp_path,
                        limit=1024)
    assert stored.name == "passwd.png" and stored.content_type == "image/png"
    assert feed.open_stored(tmp_path, stored.key).read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValidationError):
        feed.open_stored(tmp_path, "../" + stored.key[3:])


def test_the_feed_is_newest_first_and_shows_a_receipt_once():
    entries = [{"kind": "comment", "created_at": "2026-01-02T10:00:00+00:00", "text": "c"},
               {"kind": "receipt", "created_at": "2026-01-01T09:00:00+00:00",
                "data": {"receipt_id": 5, "amount": "10.00"}},
               {"kind": "receipt", "created_at": "2026-01-01T08:00:00+00:00",
                "data": {"receipt_id": 6, "amount": "20.00"}}]
    receipts = [{"id": 5, "amount": "10.00", "created_at": "2026-01-01T09:00:00+00:00"}]
    calls = [{"id": 1, "started_at": "2026-01-03T00:00:00+00:00"}]
    merged = feed.merge_feed(calls, receipts, entries)
    assert [(e["kind"], e["item"].get("id")) for e in merged] == [
        ("call", 1), ("comment", None), ("receipt", 5), ("receipt", 6)]
