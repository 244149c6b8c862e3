"""A head of sales in a real Chromium opens the forecast from the menu: the weighted
pipeline beside the expected receipts, a chart, and the workbook read back."""
from __future__ import annotations

from decimal import Decimal

import openpyxl
import pytest
from playwright.sync_api import expect

from tests.support.stack import Stack

pytestmark = pytest.mark.browser


def test_head_opens_the_forecast_and_downloads_it(stack: Stack, login, page, tmp_path):
    answer = stack.ok("GET", "/deals?limit=1")  # the stack is up and answering
    assert answer is not None
    login("head")
    page.click("#menu-forecast")
    expect(page.locator("h1")).to_have_text("Прогноз продаж и поступлений")
    expect(page.locator("#pipeline-table tbody tr")).to_have_count(7)  # 6 months + later
    assert page.locator(".pipeline-chart rect[data-month]").count() == 12
    total = page.locator("#pipeline-total").inner_text()

    with page.expect_download() as download:
        page.click("#forecast-xlsx")
    path = tmp_path / "forecast.xlsx"
    download.value.save_as(path)
    book = openpyxl.load_workbook(path)
    sheet = book["Взвешенная воронка"]
    assert sheet.cell(3, 1).value == "Месяц"
    shown = Decimal(total.replace("\u202f", "").replace(",", "."))
    assert Decimal(str(sheet.cell(3 + 7 + 1, 4).value)).quantize(Decimal("0.01")) == shown
    assert "По менеджерам" in book.sheetnames

    page.goto(f"{stack.url}/analytics/forecast?months=99")
    expect(page.locator("#forecast-error")).to_be_visible()
    expect(page.locator("input[name=months]")).to_have_value("99")


def test_head_ranks_managers_and_a_manager_is_refused(stack: Stack, login, page):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Рейтинг»", "kind": "person"})
    deal = stack.ok("POST", "/deals", json={"name": "Рейтинговая", "client_id": client["id"],
                                            "expected_amount": "4321"})
    stack.ok("POST", f"/deals/{deal['id']}/status", json={"status": "won"})
    login("head")
    page.click("#menu-performance")
    expect(page.locator("h1")).to_have_text("Работа менеджеров")
    rows = page.locator("#performance-table tbody tr[data-manager]")
    expect(rows.first).to_be_visible()
    assert page.locator(".bars-chart").count() == 1
    ranks = [int(x) for x in page.locator("#performance-table tbody tr td:first-child")
             .all_inner_texts()]
    assert ranks == list(range(1, len(ranks) + 1))

    page.goto(f"{stack.url}/analytics/performance?start=2026-13-01")
    expect(page.locator("#performance-error")).to_be_visible()
    expect(page.locator("input[name=start]")).to_have_value("")  # not a date: the picker drops it

    page.context.clear_cookies()
    login("anna")
    answer = page.goto(f"{stack.url}/analytics/performance")
    assert answer is not None and answer.status == 403
    assert page.locator("#menu-performance").count() == 0
