"""Pure rules of payment plans, receipts, the forecast and online notices, one by one."""
from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest

from services.kit.errors import ValidationError
from services.payments import domain
from services.payments.domain.statements import identity_key, normalise_account
from services.payments.feeds import Transaction
from services.payments.store.files import Storage

TODAY = date(2026, 3, 18)  # a Wednesday


def field_of(fn, *args) -> str | None:
    with pytest.raises(ValidationError) as refused:
        fn(*args)
    return refused.value.field


# --- plans -----------------------------------------------------------------------------------


def test_planned_payment_keeps_document_numbers_and_their_canonical_keys():
    cleaned = domain.validate_planned_payment({
        "amount": "1 200,50", "due_date": "2026-04-01", "currency": "rub",
        "invoice_number": " № 001024 ", "contract_number": "д-15/2024"})
    assert cleaned["amount"] == D("1200.50") and cleaned["currency"] == "RUB"
    assert (cleaned["invoice_number"], cleaned["invoice_key"]) == ("№ 001024", "1024")
    assert (cleaned["contract_number"], cleaned["contract_key"]) == ("д-15/2024", "Д-15/2024")


def test_status_outstanding_and_totals():
    assert domain.payment_status(D("100"), D("0")) == "planned"
    assert domain.payment_status(D("100"), D("40")) == "partial"
    assert domain.payment_status(D("100"), D("140")) == "paid"
    assert domain.outstanding_of(D("100"), D("40"), "partial") == D("60")
    assert domain.outstanding_of(D("100"), D("140"), "paid") == D("0")
    assert domain.outstanding_of(D("100"), D("0"), "cancelled") == D("0")
    assert domain.totals([(D("100"), D("140"), "paid"), (D("50"), D("20"), "partial"),
                          (D("999"), D("0"), "cancelled")]) == {
        "budget": D("150"), "paid": D("160"), "outstanding": D("30"), "credit": D("40")}


def test_payment_changes_never_move_the_due_date_silently():
    assert field_of(domain.validate_payment_changes, {"due_date": "2026-05-01"}, D(0)) == \
        "due_date"
    assert domain.validate_payment_changes({"invoice_number": "№7"}, D(0)) == {
        "invoice_number": "№7", "invoice_key": "7"}
    assert domain.validate_payment_changes({"invoice_number": ""}, D(0)) == {
        "invoice_number": None, "invoice_key": None}


def test_moving_a_due_date_needs_a_new_date_and_a_reason():
    assert domain.validate_move({"due_date": "2026-04-10", "reason": " отсрочка "},
                                TODAY) == (date(2026, 4, 10), "отсрочка")
    assert field_of(domain.validate_move, {"due_date": "2026-03-18", "reason": "x"},
                    TODAY) == "due_date"
    assert field_of(domain.validate_move, {"due_date": "2026-04-10", "reason": "  "},
                    TODAY) == "reason"


def test_cancelling_needs_no_money_received():
    domain.check_cancellable("planned", D("0"))
    assert field_of(domain.check_cancellable, "partial", D("1")) == "payment_id"
    assert field_of(domain.check_cancellable, "cancelled", D("0")) == "payment_id"


# --- receipts --------------------------------------------------------------------------------


def test_receipt_defaults_to_what_is_outstanding_today():
    assert domain.validate_receipt({}, D("60.00"), TODAY) == {
        "amount": D("60.00"), "received_on": TODAY, "comment": None}
    assert domain.validate_receipt({"amount": "100", "received_on": "2026-03-01"}, D("60"),
                                   TODAY)["amount"] == D("100.00")  # overpayment allowed
    assert field_of(domain.validate_receipt, {}, D("0.00"), TODAY) == "amount"
    assert field_of(domain.validate_receipt, {"received_on": "2026-03-19"}, D(1), TODAY) == \
        "received_on"


def test_corrections_need_a_reason_and_a_change_and_keep_bank_facts():
    base = (D("100.00"), date(2026, 3, 1), "manual", TODAY)
    assert domain.validate_correction({"amount": "90", "reason": "опечатка"}, *base) == {
        "amount": D("90.00"), "received_on": date(2026, 3, 1), "reason": "опечатка"}
    assert field_of(domain.validate_correction, {"amount": "90"}, *base) == "reason"
    assert field_of(domain.validate_correction, {"amount": "100", "reason": "x"}, *base) == \
        "amount"
    assert field_of(domain.validate_correction, {"amount": "0", "reason": "x"}, *base) == \
        "amount"
    bank = (D("100.00"), date(2026, 3, 1), "bank", TODAY)
    assert field_of(domain.validate_correction, {"received_on": "2026-03-02", "reason": "x"},
                    *bank) == "received_on"


def test_allocations_must_add_up_to_the_transaction():
    assert domain.validate_allocations([{"payment_id": 3, "amount": "70"},
                                        {"payment_id": "5", "amount": "30.00"}],
                                       D("100.00")) == [(3, D("70.00")), (5, D("30.00"))]
    assert field_of(domain.validate_allocations, [{"payment_id": 3, "amount": "70"}],
                    D("100")) == "allocations"
    assert field_of(domain.validate_allocations, [{"payment_id": 3, "amount": "70"},
                                                  {"payment_id": 3, "amount": "30"}],
                    D("100")) == "allocations[1].payment_id"
    assert field_of(domain.validate_allocations, [{"payment_id": 3, "amount": "-1"}],
                    D("100")) == "allocations[0].amount"
    assert field_of(domain.validate_allocations, [{"payment_id": "x", "amount": "1"}],
                    D("1")) == "allocations[0].payment_id"
    assert field_of(domain.validate_allocations, [], D("1")) == "allocations"


# --- forecast -----------------------------------------------------------------------------------


def test_weeks_start_on_monday_and_months_on_the_first():
    weeks = domain.periods(TODAY, "week", 3, past=1)
    assert [(p.start, p.end) for p in weeks] == [
        (date(2026, 3, 9), date(2026, 3, 16)), (date(2026, 3, 16), date(2026, 3, 23)),
        (date(2026, 3, 23), date(2026, 3, 30)), (date(2026, 3, 30), date(2026, 4, 6))]
    assert weeks[1].label == "16.03–22.03"
    months = domain.periods(date(2026, 1, 31), "month", 3)
    assert [p.start for p in months] == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert months[1].end == date(2026, 3, 1) and months[0].label == "2026-01"


def test_forecast_puts_overdue_apart_and_splits_by_manager():
    window = domain.periods(TODAY, "week", 2)
    result = domain.forecast(
        open_rows=[(date(2026, 3, 16), 1, D("50")),  # this week but before today: overdue
                   (date(2026, 3, 18), 1, D("100")), (date(2026, 3, 25), 2, D("30")),
                   (date(2026, 3, 22), None, D("5")), (date(2026, 9, 1), 2, D("700"))],
        received_rows=[(date(2026, 3, 17), 1, D("20")), (date(2026, 3, 1), 1, D("999"))],
        today=TODAY, window=window)
    assert [p["expected"] for p in result["periods"]] == [D("105"), D("30")]
    assert [p["received"] for p in result["periods"]] == [D("20"), D("0")]
    assert [p["received_to_date"] for p in result["periods"]] == [D("20"), None]
    assert (result["overdue"], result["later"], result["expected_total"]) == (
        D("50"), D("700"), D("135"))
    assert [m["manager_id"] for m in result["managers"]] == [1, 2, None]
    assert result["managers"][0]["overdue"] == D("50")
    assert result["managers"][1]["expected"] == [D("0"), D("30")]


def test_forecast_query_is_checked():
    assert domain.validate_forecast_query({}) == {"granularity": "week", "periods": 12,
                                                  "past": 0, "manager_id": None,
                                                  "currency": "RUB"}
    assert field_of(domain.validate_forecast_query, {"periods": "0"}) == "periods"
    assert field_of(domain.validate_forecast_query, {"past": "x"}) == "past"
    assert field_of(domain.validate_forecast_query, {"manager_id": "-3"}) == "manager_id"


# --- online notices --------------------------------------------------------------------------


def test_notification_gives_only_event_and_provider_id():
    notice = domain.parse_notification({"type": "notification", "event": "payment.succeeded",
                                        "object": {"id": "22e12f66-000f-5000-8000-18db351245c7",
                                                   "amount": {"value": "2.00"}}})
    assert notice == domain.OnlineNotice("payment.succeeded",
                                         "22e12f66-000f-5000-8000-18db351245c7")
    assert field_of(domain.parse_notification, {"type": "notification", "event": "e",
                                                "object": {"id": "a/b"}}) == "object.id"


def test_verified_payment_must_be_that_payment_succeeded_with_our_id():
    obj = {"id": "p1", "status": "succeeded", "amount": {"value": "2.00", "currency": "RUB"},
           "captured_at": "2026-03-18T10:51:18.139Z", "metadata": {"payment_id": "42"}}
    assert domain.verified_payment(obj, "p1") == domain.OnlinePayment(
        "p1", 42, D("2.00"), "RUB", date(2026, 3, 18))
    assert field_of(domain.verified_payment, obj, "p2") == "object.id"
    assert field_of(domain.verified_payment, {**obj, "status": "pending"}, "p1") == \
        "object.status"
    assert field_of(domain.verified_payment, {**obj, "metadata": {}}, "p1") == \
        "object.metadata.payment_id"
    assert field_of(domain.verified_payment, {**obj, "amount": {"value": "0.00"}}, "p1") == \
        "object.amount.value"


# --- projection and files -----------------------------------------------------------------------


def test_update_events_give_new_values_in_either_change_shape():
    assert domain.new_values({"changes": {"manager_id": [3, 4], "name": {"from": "a", "to": "b"}}},
                      ("name", "manager_id", "client_id")) == {"manager_id": 4, "name": "b"}
    assert domain.new_values({"manager_id": 9, "changes": {"manager_id": [3, 4]}},
                      ("manager_id",)) == {"manager_id": 9}


def test_identity_key_is_bounded_and_accounts_normalised():
    tx = Transaction(own_account="40702810000000001234", date=TODAY, number="1",
                     amount=D("1.00"), direction="credit")
    assert identity_key(tx) == tx.identity
    long = replace(tx, number="9" * 1000)
    assert identity_key(long).startswith("sha256:") and len(identity_key(long)) == 71
    assert normalise_account(" de89 3704 0044 ") == "DE8937040044"


def test_uploaded_file_names_cannot_leave_the_upload_folder(tmp_path: Path):
    storage = Storage(tmp_path)
    assert storage.upload_path("a" * 32) == tmp_path / "uploads" / ("a" * 32)
    for name in ("../x", "a" * 31, "A" * 32, "/etc/passwd"):
        with pytest.raises(ValidationError):
            storage.upload_path(name)
