"""In Chromium: a manager generates a contract on the deal page and the client signs it on
its link with the one-time code that reached their mailbox (the SMTP test server)."""
from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.support.notify_standins import CommsStack, comms_stack
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def comms(pytestconfig: Any) -> CommsStack:
    return comms_stack(pytestconfig)


@pytest.fixture(scope="module")
def stack(comms: CommsStack) -> Stack:
    return comms.stack


def test_a_client_signs_a_contract_with_the_code_from_their_mail(comms, stack, login, page,
                                                                  browser: Browser):
    client = stack.ok("POST", "/clients", json={
        "kind": "legal", "name": "Подписант", "inn": "7728168971",
        "contacts": [{"name": "Ольга Петрова", "emails": ["olga@podpisant.test"]}]})
    deal = stack.ok("POST", "/deals", json={"name": "Договор на внедрение",
                                            "client_id": client["id"]})
    stack.ok("PUT", f"/deals/{deal['id']}/calculation", json={"lines": [
        {"kind": "service", "name": "Настройка", "unit_price": "5000.00"}]})

    login("anna")
    page.goto(f"{stack.url}/deals/{deal['id']}")
    page.select_option("#template-select", label="Договор")
    page.click("#generate")
    document = page.locator("#panel-documents li.document").first
    expect(document.locator(".doc-title")).to_contain_text("Договор №")
    link = document.locator("input.link-url").input_value()

    client_context = browser.new_context(locale="ru-RU")  # the client: no session
    try:
        visitor = client_context.new_page()
        visitor.goto(link)
        expect(visitor.locator("h1")).to_contain_text("Договор №")
        visitor.click("#send-code")
        expect(visitor.locator("#code-sent")).to_be_visible()
        mail = wait_for(lambda: [m for m in comms.smtp.messages
                                 if m["To"] == "olga@podpisant.test"], timeout=20,
                        message="the code's e-mail")[-1]
        code = re.search(r"\b(\d{6})\b", mail.get_body().get_content()).group(1)
        visitor.fill("#code", code)
        visitor.click("#sign-button")
        expect(visitor.locator("#link-message")).to_have_text("Документ подписан. Спасибо!")
        expect(visitor.locator("#sign")).to_have_count(0)
    finally:
        client_context.close()

    page.reload()
    expect(page.locator("#panel-documents .doc-status").first).to_have_text("подписан")
    expect(page.locator("#panel-documents li.document").first).to_contain_text("Ольга Петрова")
    expect(page.locator("#panel-feed")).to_contain_text("Клиент подписал")
