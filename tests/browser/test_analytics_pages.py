"""A head of sales in a real Chromium: opens the funnel of a slice, clicks a layer to see
its deals (each a link to the deal page), and downloads both exports; the PDF's text
(pdftotext) and the workbook's numbers and chart (openpyxl) are read back."""
from __future__ import annotations

import re
import subprocess
import zipfile

import openpyxl
import pytest
from playwright.sync_api import expect

from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.browser


def test_head_clicks_a_layer_and_downloads_the_pdf_and_the_workbook(stack: Stack, login, page,
                                                                    tmp_path):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Экспорт»", "kind": "person"})
    deals = [stack.ok("POST", "/deals", json={"name": f"Экспорт {i}", "client_id": client["id"],
                                              "expected_amount": "2500.50"}) for i in range(3)]
    for deal in deals[:2]:
        stack.ok("POST", f"/deals/{deal['id']}/status", json={"status": "qualification"})
    stack.ok("POST", f"/deals/{deals[0]['id']}/status", json={"status": "proposal"})
    wait_for(lambda: [r["reached"] for r in stack.ok(
        "GET", f"/analytics/funnel?client_id={client['id']}", user="head")["layers"]][:3]
        == [3, 2, 1], message="the funnel of the new deals")

    login("head")
    page.click("nav >> text=Аналитика")
    expect(page.locator("h1")).to_contain_text("Воронка продаж")
    page.goto(f"{stack.url}/analytics?client_id={client['id']}")
    expect(page.locator("#layer-qualification td").nth(1)).to_have_text("2")
    expect(page.locator(".bottleneck-callout").first).to_contain_text("Узкое место")

    page.locator('.funnel-chart [data-layer="qualification"]').click()
    expect(page.locator("h1")).to_contain_text("Квалификация")
    rows = page.locator("#layer-deals tbody tr")
    expect(rows).to_have_count(2)
    assert f"client_id={client['id']}" in page.url  # the slice follows the click
    page.locator("#layer-deals a", has_text="Экспорт 0").click()
    page.wait_for_url(f"**/deals/{deals[0]['id']}")

    page.goto(f"{stack.url}/analytics?client_id={client['id']}")
    with page.expect_download() as pdf_download:
        page.click("#export-pdf")
    pdf_path = tmp_path / "funnel.pdf"
    pdf_download.value.save_as(pdf_path)
    text = subprocess.run(["pdftotext", "-layout", str(pdf_path), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert "Воронка продаж" in text and "Квалификация" in text and "Узкое место" in text
    info = subprocess.run(["pdfinfo", str(pdf_path)], check=True, capture_output=True,
                          text=True).stdout
    size = re.search(r"Pages:\s+(\d+).*Page size:\s+([\d.]+) x ([\d.]+) pts \(A4\)", info, re.S)
    assert size and size.group(1) == "1" and float(size.group(2)) > float(size.group(3))
    fonts = subprocess.run(["pdffonts", str(pdf_path)], check=True, capture_output=True,
                           text=True).stdout
    assert "DejaVu" in fonts and " yes " in fonts  # the Cyrillic font is embedded

    with page.expect_download() as xlsx_download:
        page.click("#export-xlsx")
    xlsx_path = tmp_path / "funnel.xlsx"
    xlsx_download.value.save_as(xlsx_path)
    book = openpyxl.load_workbook(xlsx_path)
    sheet = book["Воронка"]
    table = {sheet.cell(r, 1).value: [sheet.cell(r, c).value for c in range(2, 4)]
             for r in range(5, 5 + 6)}
    assert table["Новая"] == [3, 7501.5] and table["Квалификация"] == [2, 5001.0]
    assert isinstance(sheet.cell(5, 2).value, int)  # numbers as numbers
    assert book["Квалификация"].cell(2, 1).value in {"Экспорт 0", "Экспорт 1"}
    [chart] = sheet._charts  # openpyxl reads the native chart back
    assert chart.type == "bar" and chart.x_axis.scaling.orientation == "maxMin"
    with zipfile.ZipFile(xlsx_path) as package:
        assert "<c:barChart>" in package.read("xl/charts/chart1.xml").decode()
