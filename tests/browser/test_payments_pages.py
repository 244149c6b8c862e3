"""People in a real Chromium: the accountant uploads a statement and works the review
queue; a manager moves a due date and records a receipt on the deal page; the forecast
draws its chart."""
from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from services.payments.feeds import Transaction, write_1c_statement
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.browser

ACCOUNT = "40702810700000000055"


def incoming(number: str, amount: str, inn: str, purpose: str) -> Transaction:
    return Transaction(own_account=ACCOUNT, date=date.today(), number=number,
                       amount=Decimal(amount), direction="credit", payer_name="АО Плательщик",
                       payer_inn=inn, payer_account="40702810500000000001", payee_name="Мы",
                       payee_inn="7700000000", purpose=purpose)


def test_accountant_uploads_a_statement_and_confirms_a_doubtful_match(stack: Stack, login,
                                                                      page):
    response = stack.api("POST", "/payments/accounts", user="buh", json={"account": ACCOUNT})
    assert response.status_code in (201, 409)
    client = stack.ok("POST", "/clients", json={"name": "АО «Браузер-оплата»",
                                                "inn": "7728168971"})
    deal = stack.ok("POST", "/deals", json={"name": "Оплата в браузере",
                                            "client_id": client["id"]})
    exact = stack.ok("POST", f"/deals/{deal['id']}/payments",
                     json={"amount": "3300.00", "due_date": str(date.today()),
                           "invoice_number": "BR-1"})
    stack.ok("POST", f"/deals/{deal['id']}/payments",
             json={"amount": "9000.00", "due_date": str(date.today() + timedelta(days=5)),
                   "invoice_number": "BR-2"})
    wait_for(lambda: (stack.ok("GET", f"/deals/{deal['id']}/payments")["payer"] or {})
             .get("inn") == "7728168971", message="the client's INN in payments")
    content = io.BytesIO()
    write_1c_statement(content, [
        incoming("71", "3300.00", "7728168971", "Оплата по счету № BR-1"),
        incoming("72", "4000.00", "7728168971", "Частичная оплата по счету № BR-2")])

    login("buh")
    page.goto(f"{stack.url}/payments/imports")
    page.set_input_files("#upload-form input[type=file]", files=[{
        "name": "vypiska.txt", "mimeType": "text/plain", "buffer": content.getvalue()}])
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#job-status")).to_have_text("готово", timeout=20_000)
    expect(page.locator("#job-counts [data-count=matched] strong")).to_have_text("1")
    expect(page.locator("#job-counts [data-count=review] strong")).to_have_text("1")

    page.goto(f"{stack.url}/payments/review?status=review")
    item = page.locator(".queue-item", has_text="Частичная оплата по счету № BR-2")
    expect(item).to_contain_text("BR-2")
    item.locator(".confirm-form button[type=submit]").click()
    expect(page.locator(".queue-item", has_text="Частичная оплата по счету № BR-2")) \
        .to_have_count(0)
    panel = stack.ok("GET", f"/deals/{deal['id']}/payments")
    assert panel["paid"] == "7300.00"
    assert {r["planned_payment_id"] for r in panel["receipts"]} >= {exact["id"]}
    page.screenshot(path=str(stack.logs / "payments-review.png"), full_page=True)


def test_manager_moves_a_due_date_and_records_a_receipt_on_the_deal_page(stack: Stack, login,
                                                                         page):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Панель»", "inn": "7707083893"})
    deal = stack.ok("POST", "/deals", json={"name": "Панель платежей", "client_id": client["id"]})
    stack.ok("POST", f"/deals/{deal['id']}/payments",
             json={"amount": "120000", "due_date": str(date.today() - timedelta(days=2))})

    login("anna")
    page.goto(f"{stack.url}/deals/{deal['id']}")
    panel = page.locator("#panel-payments")
    expect(panel).to_contain_text("120 000,00")
    expect(panel.locator("tr.overdue")).to_have_count(1)
    panel.locator("details.pay-more summary", has_text="Перенести срок").first.click()
    new_due = date.today() + timedelta(days=10)
    panel.locator(".move-form input[name=due_date]").fill(new_due.isoformat())
    panel.locator(".move-form input[name=reason]").fill("клиент попросил отсрочку")
    panel.locator(".move-form button[type=submit]").click()
    expect(panel.locator(".pay-history")).to_contain_text("клиент попросил отсрочку")
    expect(panel.locator("tr.overdue")).to_have_count(0)

    panel.locator(".receive-form input[name=amount]").fill("20000")
    panel.locator(".receive-form button[type=submit]").click()
    expect(page.locator("#panel-payments #paid")).to_have_text("20\u202f000,00\u202f₽")
    expect(page.locator("#panel-payments #outstanding")).to_have_text("100\u202f000,00\u202f₽")

    page.goto(f"{stack.url}/payments/forecast")
    expect(page.locator("#forecast-chart")).to_have_attribute("data-ready", "1")
    # other tests' payments may fall in the same period: the moved payment's period holds
    # at least its 100 000, and the page shows exactly what the service counts there
    forecast = stack.ok("GET", "/payments/forecast")
    period = next(p for p in forecast["periods"]
                  if p["start"] <= new_due.isoformat() <= p["end"])
    assert Decimal(period["expected"]) >= Decimal("100000")
    row = page.locator("#forecast-table tbody tr", has_text=period["label"]).first
    whole, cents = f"{Decimal(period['expected']):.2f}".split(".")
    expect(row).to_contain_text(f"{int(whole):,}".replace(",", "\u202f") + "," + cents)


def test_a_refused_statement_names_its_line_and_field_in_russian(stack: Stack, login, page):
    content = io.BytesIO()
    write_1c_statement(content, [incoming("81", "500.00", "7728168971", "Оплата"),
                                 incoming("82", "700.00", "7728168971", "Оплата")])
    lines = content.getvalue().split(b"\n")
    # the second document's amount, spoiled: the page must point at that very line
    index = [i for i, line in enumerate(lines) if line.startswith("Сумма=".encode("cp1251"))][1]
    lines[index] = "Сумма=7оо,00\r".encode("cp1251")

    login("buh")
    page.goto(f"{stack.url}/payments/imports")
    page.set_input_files("#upload-form input[type=file]", files=[{
        "name": "broken.txt", "mimeType": "text/plain", "buffer": b"\n".join(lines)}])
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#job-status")).to_have_text("отклонён", timeout=20_000)
    error = page.locator("#job-error")
    expect(error).to_have_attribute("data-line", str(index + 1))
    expect(error.locator(".error-text")).to_have_text(
        f"Строка {index + 1}: в поле «Сумма» не сумма: «7оо,00».")
    expect(error).not_to_contain_text("line")
    page.goto(f"{stack.url}/payments/imports")
    expect(page.locator(".import-error", has_text="«7оо,00»").first).to_contain_text(
        f"Строка {index + 1}: в поле «Сумма»")
