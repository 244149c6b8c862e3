"""Payment plans on a real broker and database: budget events, receipts (partial, over,
corrected, cancelled), due date moves, overdue, the forecast (P1–P3, P5)."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from services.kit.errors import Conflict, ValidationError
from services.payments.models import DealRef, ReceiptCorrection
from tests.service.payments.conftest import publish
from tests.support import infra

# "Today" where the business is (the service's TIMEZONE default): between 21:00 and
# midnight UTC it is already tomorrow in Moscow.
TODAY = datetime.now(ZoneInfo("Europe/Moscow")).date()


def test_budget_follows_the_plan_with_growing_revisions(payments, spy):
    events = spy("payments", "budget_changed")
    first = payments.plan(501, "1000.00", TODAY + timedelta(days=10))
    payments.plan(501, "250.50", TODAY + timedelta(days=40), comment="второй этап")
    budgets = events.wait_for("budget_changed", 2)
    assert [(e["data"]["budget"], e["data"]["revision"]) for e in budgets] == [
        ("1000.00", 1), ("1250.50", 2)]
    assert budgets[1]["data"] == {"deal_id": 501, "budget": "1250.50", "paid": "0.00",
                                  "outstanding": "1250.50", "currency": "RUB", "revision": 2,
                                  "user_id": 1}
    payments.call("update_planned_payment", first["id"], {"amount": "1200.00"}, user_id=3)
    assert events.wait_for("budget_changed", 3)[2]["data"]["budget"] == "1450.50"
    payments.call("cancel_planned_payment", first["id"], {"reason": "клиент отказался"},
                  user_id=3)
    latest = events.wait_for("budget_changed", 4)[3]["data"]
    assert (latest["budget"], latest["revision"]) == ("250.50", 4)


def test_partial_receipt_leaves_the_rest_outstanding_and_overpayment_is_credit(payments, spy):
    received = spy("payments", "payment_received")
    budgets = spy("payments", "budget_changed")
    payment = payments.plan(502, "1000.00", TODAY)
    part = payments.call("mark_received", payment["id"], {"amount": "400.00"}, user_id=4)
    assert part["payment"]["status"] == "partial"
    assert part["payment"]["outstanding"] == "600.00"
    rest = payments.call("mark_received", payment["id"],
                         {"amount": "700.00", "received_on": str(TODAY)}, user_id=4)
    assert rest["payment"]["status"] == "paid"
    assert rest["payment"]["credit"] == "100.00"
    panel = payments.call("deal_payments", 502)
    assert (panel["budget"], panel["paid"], panel["outstanding"], panel["credit"]) == (
        "1000.00", "1100.00", "0.00", "100.00")
    events = received.wait_for("payment_received", 2)
    assert [e["data"]["amount"] for e in events] == ["400.00", "700.00"]
    assert events[0]["data"] == {
        "receipt_id": part["receipt"]["id"], "payment_id": payment["id"], "deal_id": 502,
        "amount": "400.00", "currency": "RUB", "received_on": str(TODAY), "source": "manual",
        "user_id": 4}
    last = budgets.wait_for("budget_changed", 3)[2]["data"]
    assert (last["paid"], last["outstanding"]) == ("1100.00", "0.00")


BAD_PLANS = [
    ({"amount": "-5", "due_date": str(TODAY)}, "amount"),
    ({"amount": "0", "due_date": str(TODAY)}, "amount"),
    ({"amount": 10.5, "due_date": str(TODAY)}, "amount"),
    ({"amount": "10.001", "due_date": str(TODAY)}, "amount"),
    ({"amount": "10", "due_date": "31.12.2026"}, "due_date"),
    ({"amount": "10"}, "due_date"),
    ({"amount": "10", "due_date": str(TODAY), "currency": "рубли"}, "currency"),
    ({"amount": "10", "due_date": str(TODAY), "invoice_number": "№ ---"}, "invoice_number"),
    ({"amount": "10", "due_date": str(TODAY), "comment": "x" * 2001}, "comment"),
]


def test_bad_planned_payment_is_refused_naming_the_field(payments):
    for data, field in BAD_PLANS:
        with pytest.raises(ValidationError) as refused:
            payments.call("add_planned_payment", 503, data)
        assert refused.value.field == field, data
    payment = payments.plan(503, "10.00", TODAY)
    for data, field in [({"amount": "-1"}, "amount"), ({"received_on": "вчера"}, "received_on"),
                        ({"received_on": str(TODAY + timedelta(days=2))}, "received_on"),
                        ({"source": "bank"}, "source")]:
        with pytest.raises(ValidationError) as refused:
            payments.call("mark_received", payment["id"], data)
        assert refused.value.field == field, data
    for data, field in [({"due_date": str(TODAY)}, "due_date"), ({}, "data"),
                        ({"currency": "EUR"}, "currency"), ({"version": "abc"}, "version")]:
        with pytest.raises(ValidationError) as refused:
            payments.call("update_planned_payment", payment["id"], data)
        assert refused.value.field == field, data
    panel = payments.call("deal_payments", 503)
    assert [p["amount"] for p in panel["payments"]] == ["10.00"] and panel["receipts"] == []


def test_a_deal_plan_stays_in_one_currency(payments):
    payments.plan(504, "10.00", TODAY)
    with pytest.raises(ValidationError) as refused:
        payments.plan(504, "10.00", TODAY, currency="EUR")
    assert refused.value.field == "currency"


def test_moving_a_due_date_keeps_who_when_and_why(payments):
    payment = payments.plan(505, "500.00", TODAY - timedelta(days=3))
    assert payment["overdue"] and payment["days_overdue"] == 3
    with pytest.raises(ValidationError) as no_reason:
        payments.call("move_due_date", payment["id"], {"due_date": str(TODAY)})
    assert no_reason.value.field == "reason"
    moved = payments.call("move_due_date", payment["id"],
                          {"due_date": str(TODAY + timedelta(days=14)),
                           "reason": "клиент попросил отсрочку"}, user_id=9)
    again = payments.call("move_due_date", payment["id"],
                          {"due_date": str(TODAY + timedelta(days=21)), "reason": "ещё неделя"},
                          user_id=10)
    assert not moved["overdue"] and again["due_date"] == str(TODAY + timedelta(days=21))
    assert [(m["from"], m["to"], m["reason"], m["moved_by"]) for m in again["moves"]] == [
        (str(TODAY - timedelta(days=3)), str(TODAY + timedelta(days=14)),
         "клиент попросил отсрочку", 9),
        (str(TODAY + timedelta(days=14)), str(TODAY + timedelta(days=21)), "ещё неделя", 10)]
    panel = payments.call("deal_payments", 505)
    assert len(panel["payments"][0]["moves"]) == 2


def test_receipt_correction_and_cancellation_are_recorded_not_rewritten(payments, spy):
    corrected_events = spy("payments", "receipt_corrected")
    payment = payments.plan(506, "900.00", TODAY)
    receipt = payments.call("mark_received", payment["id"], {"amount": "900.00"},
                            user_id=4)["receipt"]
    with pytest.raises(ValidationError) as no_reason:
        payments.call("correct_receipt", receipt["id"], {"amount": "800.00"}, user_id=5)
    assert no_reason.value.field == "reason"
    fixed = payments.call("correct_receipt", receipt["id"],
                          {"amount": "800.00", "reason": "ошибка в сумме"}, user_id=5)
    assert fixed["receipt"]["amount"] == "800.00"
    assert fixed["payment"]["status"] == "partial"
    cancelled = payments.call("cancel_receipt", receipt["id"], {"reason": "платёж вернули"},
                              user_id=5)
    assert cancelled["payment"]["status"] == "planned"
    with pytest.raises(Conflict):
        payments.call("cancel_receipt", receipt["id"], {"reason": "ещё раз"}, user_id=5)
    panel = payments.call("deal_payments", 506)
    assert panel["receipts"] == [] and panel["paid"] == "0.00"
    assert [r["id"] for r in panel["cancelled_receipts"]] == [receipt["id"]]
    assert [(c["kind"], c["old_amount"], c["new_amount"], c["reason"], c["created_by"])
            for c in panel["corrections"]] == [
        ("correction", "900.00", "800.00", "ошибка в сумме", 5),
        ("cancellation", "800.00", "0.00", "платёж вернули", 5)]
    events = corrected_events.wait_for("receipt_corrected", 2)
    assert [e["data"]["kind"] for e in events] == ["correction", "cancellation"]
    with payments.db() as db:
        assert len(db.scalars(select(ReceiptCorrection)).all()) == 2


def test_overdue_by_deal_for_kanban_cards(payments):
    payments.plan(507, "100.00", TODAY - timedelta(days=5))
    payments.plan(507, "50.00", TODAY - timedelta(days=1))
    payments.plan(507, "70.00", TODAY + timedelta(days=1))
    paid = payments.plan(508, "10.00", TODAY - timedelta(days=2))
    payments.call("mark_received", paid["id"], {}, user_id=1)
    payments.plan(509, "30.00", TODAY + timedelta(days=2))
    result = payments.call("overdue_by_deal", [507, 508, 509, 999])
    assert result == {"507": {"count": 2, "amount": "150.00", "currency": "RUB",
                              "oldest_due_date": str(TODAY - timedelta(days=5)), "days": 5}}
    with pytest.raises(ValidationError) as refused:
        payments.call("overdue_by_deal", ["x"])
    assert refused.value.field == "deal_ids"


def test_payment_overdue_is_published_once_per_payment_with_its_manager(
        start_payments, rpc, amqp_uri, session_of, storage, spy):
    from tests.service.payments.conftest import Payments

    start_payments(OVERDUE_CHECK_SECONDS=0.05)
    payments = Payments(rpc, amqp_uri, session_of, storage)
    overdue = spy("payments", "payment_overdue")
    deal = payments.deal_of_client("7707083893", manager_id=42)
    first = payments.plan(deal, "300.00", TODAY - timedelta(days=2))
    [event] = overdue.wait_for("payment_overdue")
    assert event["data"] == {"payment_id": first["id"], "deal_id": deal, "amount": "300.00",
                             "currency": "RUB", "due_date": str(TODAY - timedelta(days=2)),
                             "manager_id": 42, "days_overdue": 2}
    # a second overdue payment is announced by a later tick; the first is not repeated
    second = payments.plan(deal, "5.00", TODAY - timedelta(days=1))
    events = overdue.wait_for("payment_overdue", 2)
    assert [e["data"]["payment_id"] for e in events] == [first["id"], second["id"]]
    third = payments.plan(deal, "6.00", TODAY - timedelta(days=1))
    overdue.wait_for("payment_overdue", 3)
    assert [e["data"]["payment_id"] for e in overdue.of_type("payment_overdue")] == [
        first["id"], second["id"], third["id"]]


def test_overdue_list_names_deal_client_and_manager(payments):
    deal = payments.deal_of_client("7707083893", manager_id=11)
    payments.plan(deal, "120.00", TODAY - timedelta(days=9))
    other = payments.deal_of_client("7728168971", manager_id=12)
    payments.plan(other, "80.00", TODAY - timedelta(days=1))
    everyone = payments.call("overdue_payments", {})
    assert everyone["total"] == 2 and everyone["amounts"] == {"RUB": "200.00"}
    first = everyone["items"][0]
    assert (first["deal_id"], first["deal_name"], first["client_name"], first["manager_id"],
            first["days_overdue"]) == (deal, "Сделка", "ООО «Клиент»", 11, 9)
    mine = payments.call("overdue_payments", {"manager_id": 12})
    assert [i["deal_id"] for i in mine["items"]] == [other]


def test_forecast_by_week_overall_and_per_manager(payments):
    anna = payments.deal_of_client("7707083893", manager_id=21)
    ivan = payments.deal_of_client("7728168971", manager_id=22)
    payments.plan(anna, "1000.00", TODAY)  # this week
    payments.plan(anna, "500.00", TODAY + timedelta(days=7))  # next week
    payments.plan(ivan, "300.00", TODAY + timedelta(days=7))
    payments.plan(ivan, "200.00", TODAY - timedelta(days=3))  # overdue
    payments.plan(ivan, "999.00", TODAY + timedelta(days=400))  # beyond the window
    received = payments.plan(anna, "40.00", TODAY + timedelta(days=3))
    payments.call("mark_received", received["id"], {}, user_id=1)
    result = payments.call("forecast", {"granularity": "week", "periods": 4})
    weeks = result["periods"]
    assert len(weeks) == 4 and weeks[0]["current"]
    assert [w["expected"] for w in weeks[:2]] == ["1000.00", "800.00"]
    assert weeks[0]["received"] == "40.00" and weeks[0]["received_to_date"] == "40.00"
    assert (result["overdue"], result["later"]) == ("200.00", "999.00")
    by_manager = {m["manager_id"]: m for m in result["managers"]}
    assert by_manager[21]["expected"][:2] == ["1000.00", "500.00"]
    assert (by_manager[22]["overdue"], by_manager[22]["total_expected"]) == ("200.00", "300.00")
    ivan_only = payments.call("forecast", {"granularity": "month", "periods": 2,
                                           "manager_id": 22})
    assert [m["manager_id"] for m in ivan_only["managers"]] == [22]
    with pytest.raises(ValidationError) as refused:
        payments.call("forecast", {"granularity": "year"})
    assert refused.value.field == "granularity"


def test_projection_follows_deal_and_client_events(payments, session_of):
    client = payments.client("7707083893")
    deal = payments.deal(client, manager_id=3)
    payments.known(deal, client)
    publish(payments.uri, "deals", "deal_updated", {
        "deal_id": deal, "changes": {"manager_id": [3, 4], "name": ["Сделка", "Новая"]},
        "version": 2})
    # an older update arriving late changes nothing
    publish(payments.uri, "deals", "deal_updated", {
        "deal_id": deal, "changes": {"manager_id": {"from": 1, "to": 2}}, "version": 1})
    survivor = payments.client("7728168971")
    payments.known(client_id=survivor)
    publish(payments.uri, "clients", "client_merged", {"survivor_id": survivor,
                                                       "merged_id": client})

    def state() -> tuple | None:
        with payments.db() as db:
            row = db.get(DealRef, deal)
            return (row.manager_id, row.name, row.client_id) if row.client_id == survivor \
                else None
    assert infra.wait_until(state, message="the merge to reach the projection") == (
        4, "Новая", survivor)
    publish(payments.uri, "clients", "client_updated", {
        "client_id": survivor, "changes": {"inn": ["7728168971", "500100732259"]},
        "inn": "500100732259", "name": "АО «Выжил»"})
    from services.payments.models import ClientRef

    def inn() -> str | None:
        with payments.db() as db:
            return db.get(ClientRef, survivor).inn
    infra.wait_until(lambda: inn() == "500100732259", message="the new INN")


def test_due_payments_of_a_period_feed_the_calendar_soonest_first(payments):
    deal = payments.deal_of_client("7707083893", manager_id=11)
    later = payments.plan(deal, "120.00", TODAY + timedelta(days=3))
    sooner = payments.plan(deal, "80.00", TODAY)
    payments.plan(deal, "5.00", TODAY + timedelta(days=40))
    other = payments.deal_of_client("7728168971", manager_id=12)
    payments.plan(other, "7.00", TODAY + timedelta(days=1))
    period = (str(TODAY), str(TODAY + timedelta(days=6)))
    mine = payments.call("due_payments", *period, manager_id=11)
    assert [p["id"] for p in mine] == [sooner["id"], later["id"]]
    assert mine[0]["deal_name"] == "Сделка" and mine[0]["client_name"] == "ООО «Клиент»"
    assert len(payments.call("due_payments", *period)) == 3
    with pytest.raises(ValidationError) as exc:
        payments.call("due_payments", period[1], period[0])
    assert exc.value.field == "date_to"


def test_a_picker_finds_open_payments_by_number_invoice_deal_or_client_name(payments):
    deal = payments.deal_of_client("7707083893", manager_id=11)
    wanted = payments.call("add_planned_payment", deal, {
        "amount": "10.00", "due_date": str(TODAY), "invoice_number": "СЧ-77_1"})
    for text in (f"№{wanted['id']}", "сч-77_1", "сделк", "клиент"):
        assert wanted["id"] in [p["id"] for p in payments.call("find_open_payments", text)], text
    assert payments.call("find_open_payments", "77%") == []  # wildcards are plain text
    assert payments.call("find_open_payments", "") == []
