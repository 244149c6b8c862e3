"""A person in a real Chromium: signs in and opens a deal page."""
from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect

from tests.support.stack import Stack

pytestmark = pytest.mark.browser


def test_manager_signs_in_and_opens_the_deal_page(stack: Stack, login, page):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Браузер»", "inn": "7728168971"})
    stack.ok("POST", f"/clients/{client['id']}/contacts",
             json={"name": "Ирина Котова", "phones": ["8 926 700-00-01"]})
    deal = stack.ok("POST", "/deals", json={"name": "Внедрение CRM", "client_id": client["id"]})
    stack.ok("POST", f"/deals/{deal['id']}/payments",
             json={"amount": "120000", "due_date": str(date.today())})

    login("anna")
    page.goto(f"{stack.url}/deals")
    page.click("text=Внедрение CRM")
    expect(page.locator("#panel-deal h1")).to_have_text("Внедрение CRM")
    expect(page.locator("#panel-client")).to_contain_text("ООО «Браузер»")
    expect(page.locator("#panel-contacts")).to_contain_text("Ирина Котова")
    expect(page.locator("#panel-payments")).to_contain_text("120 000,00")
    assert page.locator(".panel-unavailable").count() == 0

    page.select_option("#panel-deal select[name=status]", "proposal")
    page.click("#panel-deal button[type=submit]")
    expect(page.locator("#panel-deal select[name=status]")).to_have_value("proposal")
    page.screenshot(path=str(stack.logs / "deal-page.png"), full_page=True)
