"""The payments section's own logic, without a server: storing uploads under a limit,
the split form, the forecast workbook."""
from __future__ import annotations

import io
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from flask import Flask
from openpyxl import load_workbook

from gateway.sections.payments import forecast_xlsx, parse_allocations, store_upload
from services.kit.errors import ValidationError


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    app = Flask(__name__)
    app.config["CRM"] = {"STATEMENTS_DIR": str(tmp_path), "STATEMENTS_MAX_BYTES": 10}
    return app


def test_upload_is_stored_whole_under_a_random_name(app, tmp_path):
    with app.app_context():
        stored = store_upload(io.BytesIO(b"1CClient"))
    assert len(stored) == 32 and (tmp_path / "uploads" / stored).read_bytes() == b"1CClient"


def test_upload_over_the_limit_or_empty_is_refused_and_leaves_nothing(app, tmp_path):
    with app.app_context():
        with pytest.raises(ValidationError) as big:
            store_upload(io.BytesIO(b"x" * 11))
        with pytest.raises(ValidationError) as empty:
            store_upload(io.BytesIO(b""))
    assert big.value.field == empty.value.field == "file"
    assert list((tmp_path / "uploads").iterdir()) == []


def test_split_form_lines_become_allocations():
    assert parse_allocations("12: 1000,00\n\n№13 : 500.50\n") == [
        {"payment_id": "12", "amount": "1000,00"}, {"payment_id": "13", "amount": "500.50"}]
    with pytest.raises(ValidationError) as refused:
        parse_allocations("12 1000")
    assert refused.value.field == "allocations"


def test_forecast_workbook_has_the_table_the_managers_and_a_chart():
    data = {"currency": "RUB", "today": "2026-03-18", "overdue": "200.00", "later": "5.00",
            "expected_total": "1300.00", "received_total": "40.00",
            "periods": [{"label": "16.03–22.03", "expected": "1000.00", "received": "40.00",
                         "received_to_date": "40.00"},
                        {"label": "23.03–29.03", "expected": "300.00", "received": "0.00",
                         "received_to_date": None}],
            "managers": [{"manager_id": 3, "overdue": "200.00", "expected": ["1000.00", "0.00"],
                          "later": "0.00", "total_expected": "1000.00"},
                         {"manager_id": None, "overdue": "0.00", "expected": ["0.00", "300.00"],
                          "later": "5.00", "total_expected": "300.00"}]}
    book = load_workbook(io.BytesIO(forecast_xlsx(data, {3: "Анна"}, lambda key: key)))
    table, people = book.worksheets
    rows = [[c.value for c in row] for row in table.iter_rows(min_row=3, max_col=4)]
    assert rows[0] == ["16.03–22.03", 1000, 40, 40]
    assert rows[1][:3] == ["23.03–29.03", 300, 0] and rows[1][3] is None
    assert rows[2][:2] == ["payments.overdue_total", 200]
    assert D(str(rows[4][1])) == D("1300")
    assert table._charts
    assert [c.value for c in people[2]][:3] == ["Анна", 200, 1000]
    assert people["A3"].value == "payments.no_manager"


def test_matching_reasons_are_shown_in_russian(app):
    from flask import g

    from gateway.sections.payments import reason_text
    from services.payments.domain.matching import Candidate, match_transaction
    from services.payments.feeds import Transaction

    tx = Transaction(own_account="40702810000000001234", date=date(2024, 3, 1), number="1",
                     amount=D("100.00"), direction="credit", payer_inn="7812345678",
                     purpose="Оплата по счету № 15")
    plans = [Candidate(id=i, deal_id=i, client_inn="7705000001", amount_outstanding=D("100.00"),
                       due_date=tx.date, invoice_numbers=("15",)) for i in (1, 2)]
    reasons = [*match_transaction(tx, plans).reasons, *match_transaction(tx, plans[:1]).reasons,
               *match_transaction(tx, []).reasons]
    with app.test_request_context():
        g.lang = "ru"
        shown = [reason_text(r) for r in reasons]
        g.lang = "en"
        assert [reason_text(r) for r in reasons] == reasons
    untranslated = [r for r, s in zip(reasons, shown, strict=True) if r == s]
    assert untranslated == [], untranslated
    assert "в назначении указан счёт 15" in shown
