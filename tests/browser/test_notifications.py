"""A person in Chromium: the bell counts what is unread and clears as they read; the
profile keeps their channels per kind of event; Telegram links with the shown code."""
from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.notify_standins import CommsStack, comms_stack
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def comms(pytestconfig: Any) -> CommsStack:
    return comms_stack(pytestconfig)


@pytest.fixture(scope="module")
def stack(comms: CommsStack) -> Stack:
    return comms.stack


def test_the_bell_counts_unread_notifications_and_reading_clears_it(stack, login, page):
    client = stack.ok("POST", "/clients", json={"kind": "person", "name": "Колокольчик"},
                      user="head")
    deal = stack.ok("POST", "/deals", json={"name": "Звонкая сделка", "client_id": client["id"]},
                    user="head")
    payment = stack.ok("POST", f"/deals/{deal['id']}/payments", user="head",
                       json={"amount": "4200.00", "due_date": str(date.today())})
    stack.ok("POST", f"/payments/{payment['id']}/receipts", json={"amount": "4200.00"},
             user="head")
    wait_for(lambda: stack.ok("GET", "/notifications?unread=1", user="head")["unread"] == 1)

    login("head")
    page.goto(f"{stack.url}/deals")
    expect(page.locator("#bell-count")).to_have_text("1")
    page.click("#bell")
    page.click("text=Поступила оплата 4 200,00 ₽")
    page.wait_for_url(f"**/deals/{deal['id']}")
    expect(page.locator("#bell-count")).to_have_count(0)


def test_a_person_chooses_channels_and_links_telegram_in_the_profile(comms, stack, login,
                                                                     page):
    login("buh")
    page.click("#profile-link")
    page.fill("input[name=email]", "не почта")
    page.click("#save-profile")
    # the error stands beside the field, and what was typed stays in it
    expect(page.locator("#profile-form-email-error")).to_be_visible()
    expect(page.locator("input[name=email]")).to_have_value("не почта")
    expect(page.locator("input[name=email]")).to_have_attribute("aria-invalid", "true")
    page.fill("input[name=email]", "buh@crm.test")
    page.fill("input[name=phone]", "8 916 000 00 42")
    sms = page.locator("input[name=pref-payment_overdue-sms]")
    sms.check()
    page.locator("input[name=pref-payment_overdue-email]").uncheck()
    page.click("#save-profile")
    expect(page.locator("#saved")).to_be_visible()
    page.reload()
    expect(page.locator("input[name=email]")).to_have_value("buh@crm.test")
    expect(sms).to_be_checked()
    expect(page.locator("input[name=pref-payment_overdue-email]")).not_to_be_checked()
    assert stack.ok("GET", "/notifications/profile", user="buh")["phone"] == "+79160000042"

    expect(page.locator("#telegram-status")).to_have_text("Telegram не подключён")
    page.click("#telegram-get-code")
    code = page.locator("#telegram-code").inner_text()
    comms.telegram.push_message(90042, f"/start {code}")
    wait_for(lambda: stack.ok("GET", "/notifications/profile", user="buh")["telegram"]["linked"])
    page.reload()
    expect(page.locator("#telegram-status")).to_have_text("Telegram подключён")
