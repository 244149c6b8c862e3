"""A manager in a real Chromium: sorts the deals table by clicking its headers (the order,
aria-sort and the URL follow, the filters stay), sets a deal's planned close date in place
and sees a passed one in red, and reads where the deal came from."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.stack import Stack

pytestmark = pytest.mark.browser


def test_a_header_click_sorts_the_table_and_keeps_the_filter(stack: Stack, login, page):
    client = stack.ok("POST", "/clients", json={"name": "Клиент сортировки", "kind": "person"})
    for name, amount in (("Сорт Б", "300.00"), ("Сорт А", "100.00"), ("Сорт В", "200.00")):
        stack.ok("POST", "/deals", json={"name": name, "client_id": client["id"],
                                         "expected_amount": amount})
    login("anna")
    page.goto(f"{stack.url}/deals?mode=table&q=Сорт")
    names = page.locator("#deals-table tbody tr.deal-row td:first-child")
    expect(names).to_have_text(["Сорт В", "Сорт А", "Сорт Б"])  # newest first
    header = page.locator('#deals-table th[data-sort="amount"]')
    expect(header).not_to_have_attribute("aria-sort", "ascending")
    header.locator("a").click()
    page.wait_for_url("**sort=amount**")
    assert "q=" in page.url  # the filter stays beside the sort
    expect(names).to_have_text(["Сорт А", "Сорт В", "Сорт Б"])
    expect(page.locator('#deals-table th[data-sort="amount"]')).to_have_attribute(
        "aria-sort", "ascending")
    page.locator('#deals-table th[data-sort="amount"] a').click()
    page.wait_for_url("**sort=-amount**")
    expect(names).to_have_text(["Сорт Б", "Сорт В", "Сорт А"])
    expect(page.locator('#deals-table th[data-sort="amount"]')).to_have_attribute(
        "aria-sort", "descending")
    page.locator('#deals-table th[data-sort="name"] a').click()
    page.wait_for_url("**sort=name**")
    expect(names).to_have_text(["Сорт А", "Сорт Б", "Сорт В"])
    expect(page.locator('#deals-table th[data-sort="amount"]')).not_to_have_attribute(
        "aria-sort", "descending")


def test_the_planned_close_date_is_edited_in_place_and_a_passed_one_is_red(stack: Stack,
                                                                           login, page):
    client = stack.ok("POST", "/clients", json={"name": "Клиент даты", "kind": "person"})
    deal = stack.ok("POST", "/deals", json={
        "name": "С датой", "client_id": client["id"], "source": "web_form",
        "source_detail": {"form_id": "Заявка", "utm_source": "yandex"}})
    login("anna")
    page.goto(f"{stack.url}/deals/{deal['id']}")
    expect(page.locator("#deal-source")).to_contain_text("веб-форма «Заявка», utm_source=yandex")
    shown = page.locator("#deal-planned-close")
    expect(shown).to_have_text("не задана")
    shown.click()
    editor = page.locator("#deal-close-line input.inline-input")
    with page.expect_response(lambda r: r.url.endswith(f"/api/v1/deals/{deal['id']}")
                              and r.request.method == "PATCH") as saved:
        editor.fill("2020-01-31")
        editor.press("Enter")
    assert saved.value.status == 200
    expect(shown).to_have_text("31.01.2020")
    page.reload()
    expect(page.locator("#deal-planned-close")).to_have_class("inline-edit overdue-date")
    expect(page.locator("#deal-close-late")).to_be_visible()
    history = page.locator('#panel-history tr[data-field="planned_close_on"]')
    expect(history).to_contain_text("Плановая дата закрытия")
    expect(history).to_contain_text("31.01.2020")
