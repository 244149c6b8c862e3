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


def test_a_client_fills_a_questionnaire_and_the_manager_sees_the_answers(stack, login, page,
                                                                         browser: Browser):
    client = stack.ok("POST", "/clients", json={"kind": "person", "name": "Анкетируемый"})
    deal = stack.ok("POST", "/deals", json={"name": "Бриф на CRM", "client_id": client["id"]})

    login("anna")
    page.goto(f"{stack.url}/deals/{deal['id']}")
    page.select_option("#questionnaire-template", label="Бриф на внедрение")
    page.click("#create-questionnaire")
    link = page.locator("#panel-documents input.questionnaire-url").first.input_value()

    client_context = browser.new_context(locale="ru-RU")
    try:
        visitor = client_context.new_page()
        visitor.goto(link)
        visitor.fill("#q-company", "ООО «Анкета»")
        expect(visitor.locator("#draft-status")).to_have_text("Черновик сохранён")
        visitor.close()  # the tab is closed: the draft must survive
        visitor = client_context.new_page()
        visitor.goto(link)
        expect(visitor.locator("#q-company")).to_have_value("ООО «Анкета»")
        expect(visitor.locator("#help-goal")).to_have_text("Опишите своими словами")
        visitor.fill("#q-goal", "Навести порядок в продажах")
        visitor.check("input[name=channels][value='E-mail']")
        visitor.set_input_files("#q-requisites", files=[{
            "name": "card.txt", "mimeType": "text/plain", "buffer": "ИНН 7728168971".encode()}])
        visitor.click("#submit-questionnaire")
        expect(visitor.locator("#questionnaire-done")).to_be_visible()
        expect(visitor.locator("#answers")).to_contain_text("Навести порядок в продажах")
        expect(visitor.locator("#submit-questionnaire")).to_have_count(0)
    finally:
        client_context.close()

    page.reload()
    panel = page.locator("#panel-documents li.questionnaire").first
    expect(panel.locator(".q-status")).to_have_text("заполнена")
    expect(panel).to_contain_text("Навести порядок в продажах")
    expect(panel).to_contain_text("card.txt")
    expect(page.locator("#panel-feed")).to_contain_text("Клиент заполнил анкету")
    with page.expect_download() as download:
        panel.locator("a", has_text="card.txt").click()
    assert download.value.suggested_filename == "card.txt"
