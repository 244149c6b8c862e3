"""In a real Chromium: a manager picks a catalogue item into the calculator as they type;
the RFM segment filters the client list and shows as its column; a head opens the BCG
matrix with its four named quadrants and downloads the workbook."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

import openpyxl
import pytest
from playwright.sync_api import expect

from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.browser


def paid(stack: Stack, name: str, amounts: list[str], days_ago: list[int],
         status: str | None = None) -> tuple[dict, dict]:
    """A client with one deal and received payments (as the accountant would record)."""
    client = stack.ok("POST", "/clients", json={"name": name, "kind": "person"})
    deal = stack.ok("POST", "/deals", json={"name": f"Сделка {name}", "client_id": client["id"],
                                            "expected_amount": "1000.00"})
    for amount, ago in zip(amounts, days_ago, strict=True):
        due = (date.today() - timedelta(days=ago)).isoformat()
        payment = stack.ok("POST", f"/deals/{deal['id']}/payments",
                           json={"amount": amount, "due_date": due})
        stack.ok("POST", f"/payments/{payment['id']}/receipts",
                 json={"amount": amount, "received_on": due})
    if status:
        stack.ok("POST", f"/deals/{deal['id']}/status", json={"status": status})
    return client, deal


def test_a_catalogue_item_is_picked_into_the_calculator(stack: Stack, login, page):
    article = f"FR-{uuid.uuid4().hex[:6]}"
    stack.ok("POST", "/products", user="admin", json={
        "name": f"Фреза торцевая {article}", "article": article, "price": "1250.50",
        "product_line": "Инструмент", "kind": "goods"})
    client = stack.ok("POST", "/clients", json={"name": "ООО «Калькулятор»", "kind": "person"})
    deal = stack.ok("POST", "/deals", json={"name": "Поставка фрез", "client_id": client["id"]})
    login("anna")
    page.goto(f"{stack.url}/deals/{deal['id']}")
    picker = page.locator("#panel-calculator .ts-control input")
    picker.fill(article.lower())
    page.locator(".ts-dropdown .option", has_text=article).click()
    row = page.locator("#calculator-form tr.line").first
    expect(row.locator('[name="line_name"]')).to_have_value(f"Фреза торцевая {article}")
    expect(row.locator('[name="line_unit_price"]')).to_have_value("1250.50")
    row.locator('[name="line_quantity"]').fill("2")
    # a free-text line beside it
    page.click("#calculator-form .add-line")
    second = page.locator("#calculator-form tr.line").nth(1)
    second.locator('[name="line_name"]').fill("Доставка")
    second.locator('[name="line_unit_price"]').fill("500")
    page.click("#calculator-form button[type=submit]")
    expect(page.locator("#calc-total")).to_contain_text("3\u202f001,00")
    # saved: the picked line keeps its catalogue id, the typed one has none
    page.reload()
    ids = page.locator('#calculator-form [name="line_catalogue_id"]')
    assert ids.nth(0).input_value() != "" and ids.nth(1).input_value() == ""
    assert page.locator('#calculator-form [name="line_name"]').nth(1).input_value() == \
        "Доставка"


def test_the_rfm_segment_filters_the_client_list(stack: Stack, login, page):
    tag = uuid.uuid4().hex[:6]
    # a client who pays often, much and recently beside one who paid once long ago
    best, _ = paid(stack, f"Чемпион {tag}", ["90000.00"] * 4, [1, 20, 40, 60])
    worst, _ = paid(stack, f"Давний {tag}", ["100.00"], [700])

    def segments() -> dict:
        stack.ok("POST", "/admin/rfm/recompute", user="admin")
        return stack.ok("GET", f"/clients/segments?ids={best['id']},{worst['id']}",
                        user="anna")
    found = wait_for(lambda: (s := segments()) and str(worst["id"]) in s and s,
                     timeout=30, message="both clients scored")
    assert found[str(worst["id"])]["segment"] == "lost"
    chosen = found[str(best["id"])]["segment"]

    login("admin")
    page.goto(f"{stack.url}/admin/rfm")
    expect(page.locator("#rfm-rules tbody tr")).to_have_count(6)
    page.click("#rfm-recompute")
    expect(page.locator("#rfm-done")).to_contain_text("Пересчитано")

    page.goto(f"{stack.url}/clients?q={tag}")
    expect(page.locator(f'tr[data-client-id="{worst["id"]}"] td[data-column="rfm"]')) \
        .to_have_text("потерянные")
    page.select_option("#rfm-filter", "lost")
    page.click("#clients-filters button[type=submit]")
    expect(page.locator(f'tr[data-client-id="{worst["id"]}"]')).to_be_visible()
    expect(page.locator(f'tr[data-client-id="{best["id"]}"]')).to_have_count(0)
    page.select_option("#rfm-filter", chosen)
    page.click("#clients-filters button[type=submit]")
    expect(page.locator(f'tr[data-client-id="{best["id"]}"]')).to_be_visible()
    expect(page.locator(f'tr[data-client-id="{worst["id"]}"]')).to_have_count(0)

    page.click(f'tr[data-client-id="{best["id"]}"] a')
    expect(page.locator("#client-segment")).to_have_text(
        {"champions": "чемпионы", "loyal": "лояльные", "promising": "перспективные",
         "at_risk": "под угрозой", "hibernating": "спящие", "lost": "потерянные"}[chosen])


def test_the_head_sees_the_bcg_matrix_and_downloads_it(stack: Stack, login, page, tmp_path):
    tag = uuid.uuid4().hex[:6]
    paid(stack, f"БКГ {tag}", ["5000.00"], [1], status="won")
    login("head")
    page.click("#menu-bcg")
    expect(page.locator("h1")).to_have_text("Матрица БКГ")
    expect(page.locator("#bcg-caption")).to_contain_text("выигранные сделки")
    for name in ("звёзды", "дойные коровы", "знаки вопроса", "собаки"):
        expect(page.locator("#bcg-chart .quadrant-name", has_text=name)).to_have_count(1)
    expect(page.locator("#bcg-table tbody tr").first).to_be_visible()
    assert "не доля рынка" in page.content()
    with page.expect_download() as download:
        page.click("#bcg-xlsx")
    path = tmp_path / "bcg.xlsx"
    download.value.save_as(path)
    sheet = openpyxl.load_workbook(path).active
    assert sheet.cell(3, 1).value == "Линия или тип"
    assert isinstance(sheet.cell(4, 2).value, (int, float))
