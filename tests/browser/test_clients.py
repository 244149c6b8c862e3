"""A person in a real Chromium: finds a client by a phone typed in another format,
rearranges the list's columns, and finds them as they left them after a reload and after
signing in again."""
from __future__ import annotations

import random

import pytest
from playwright.sync_api import Page, expect

from tests.support.stack import Stack
from tests.unit.clients.vectors import make_inn10

pytestmark = pytest.mark.browser


def header(page: Page) -> list[str]:
    return page.locator("#clients-table thead th[data-column]").evaluate_all(
        "cells => cells.map(c => c.dataset.column)")


def test_filter_by_phone_in_another_format_and_the_columns_are_remembered(
        stack: Stack, login, page: Page):
    digits = f"916{random.randrange(10**7):07d}"
    client = stack.ok("POST", "/clients", json={
        "name": "ООО «Браузерный поиск»", "inn": make_inn10(f"77{random.randrange(10**7):07d}"),
        "contacts": [{"name": "Светлана", "phones": [f"+7{digits}"]}]}, user="ivan")
    stack.ok("POST", "/clients", json={"name": "ООО «Шум»", "inn": make_inn10("771234567"),
                                       "contacts": [{"name": "Шум", "phones": ["+79990001122"]}]},
             user="ivan")

    login("ivan")
    page.goto(f"{stack.url}/clients")
    page.fill("#clients-filters input[name=phone]",
              f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}")
    page.click("#clients-filters button[type=submit]")
    rows = page.locator("#clients-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-client-id", str(client["id"]))
    expect(page.locator("#clients-table tbody")).to_contain_text(
        f"+7 {digits[:3]} {digits[3:6]}-{digits[6:8]}-{digits[8:]}")

    page.click("#columns-chooser summary")
    chooser = page.locator("#columns-form")
    chooser.locator("input[value=city]").uncheck()
    chooser.locator("input[value=email]").check()
    email = chooser.locator("li[data-column=email]")
    for _ in range(8):  # from below the shown columns up to the top
        email.locator("button[data-move='-1']").click()
    chooser.locator("button[type=submit]").click()
    chosen = ["email", "name", "inn", "manager", "phone", "last_contact_at"]
    expect(page.locator("#clients-table thead th").first).to_have_attribute(
        "data-column", "email")
    assert header(page) == chosen
    expect(rows).to_have_count(1)  # the filter survived saving the columns

    page.reload()
    assert header(page) == chosen
    page.screenshot(path=str(stack.logs / "clients-list.png"), full_page=True)
    page.click("header form[action='/logout'] button")
    login("ivan")
    page.goto(f"{stack.url}/clients")
    assert header(page) == chosen


def test_client_page_takes_a_comment_and_shows_the_change_history(stack: Stack, login,
                                                                  page: Page):
    client = stack.ok("POST", "/clients", json={
        "name": "ООО «Карточка»", "inn": make_inn10(f"77{random.randrange(10**7):07d}"),
        "contacts": [{"name": "Олег Петров", "phones": ["+7 495 765-43-21 доб. 5"]}]})
    login("anna")
    page.goto(f"{stack.url}/clients/{client['id']}")
    expect(page.locator("#client-name")).to_have_text("ООО «Карточка»")
    expect(page.locator("#panel-contacts")).to_contain_text("+7 495 765-43-21 доб. 5")
    # the field is edited in place: click, type, Enter; a toast says it was saved
    page.click("#client-field-website")
    page.fill("#panel-client input.inline-input", "kartochka.ru")
    page.keyboard.press("Enter")
    expect(page.locator("#toasts .toast").last).to_have_text("Сохранено")
    expect(page.locator("#client-field-website")).to_have_text("https://kartochka.ru")
    page.fill("#panel-comments textarea[name=text]", "Договорились о встрече")
    page.click("#panel-comments button[type=submit]")
    expect(page.locator("#panel-comments")).to_contain_text("Договорились о встрече")
    assert page.locator(".panel-unavailable").count() == 0
    page.screenshot(path=str(stack.logs / "client-page.png"), full_page=True)
    page.click("#tab-history")
    row = page.locator("#panel-history tr[data-field=website]")
    expect(row).to_contain_text("https://kartochka.ru")
    expect(row).to_contain_text("Анна Менеджер")
