"""The website form as a visitor meets it: an administrator makes a form and copies its
snippet into a plain HTML page served from another port; a person fills it in and the
lead is in the inbox; a bot's submission looks just as successful but is never listed."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.support.stack import free_port, wait_for

pytestmark = pytest.mark.browser

CONSENT = "Согласен на обработку персональных данных по 152-ФЗ (браузерный тест)."


@pytest.fixture
def website() -> Iterator[dict[str, Any]]:
    """A company's website: one page whose body is set by the test."""
    site: dict[str, Any] = {"html": ""}

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = site["html"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site["url"] = f"http://127.0.0.1:{server.server_address[1]}/contacts?utm_source=google"
    yield site
    server.shutdown()


def test_a_person_filling_the_embedded_form_lands_in_the_inbox_and_a_bot_does_not(
        stack: Any, login: Any, browser: Any, website: dict[str, Any]) -> None:
    admin = login("admin")
    admin.goto(f"{stack.url}/leads/forms")
    admin.fill("#new-form input[name=name]", "Обратный звонок")
    admin.fill("#new-form textarea[name=consent_text]", CONSENT)
    admin.fill("#new-form input[name=min_fill_seconds]", "2")
    admin.click("#new-form button")
    snippet = admin.locator("textarea.snippet").last.input_value()
    assert "data-crm-form" in snippet
    website["html"] = f"<!doctype html><html><body><h1>Контакты</h1>{snippet}</body></html>"

    visitor = browser.new_context(locale="ru-RU").new_page()
    # Arrived from an advert: the campaign's tag is only on the referring address.
    visitor.goto(website["url"], referer="https://ads.example/click?utm_campaign=spring")
    visitor.wait_for_selector("form.crm-form")
    started = visitor.evaluate("Date.now()")
    visitor.fill("input[name=name]", "Ольга Браузерова")
    visitor.fill("input[name=phone]", "+7 916 765-43-21")
    visitor.fill("textarea[name=message]", "Перезвоните после обеда")
    visitor.check("input[name=consent]")
    # A person takes a moment: submit once the form's minimum fill time has passed.
    visitor.wait_for_function(f"Date.now() - {started} > 2500")
    visitor.click("form.crm-form button[type=submit]")
    expect(visitor.locator(".crm-status")).to_have_text("Спасибо! Мы свяжемся с вами.")

    bot = browser.new_context().new_page()
    bot.goto(website["url"])
    bot.wait_for_selector("form.crm-form")
    bot.fill("input[name=name]", "Бот Ботов")
    bot.fill("input[name=phone]", "+7 916 000-00-01")
    bot.evaluate("document.querySelector('input[name=website]').value = 'http://spam'")
    bot.check("input[name=consent]")
    bot.click("form.crm-form button[type=submit]")
    expect(bot.locator(".crm-status")).to_have_text("Спасибо! Мы свяжемся с вами.")

    inbox = admin
    inbox.goto(f"{stack.url}/leads")
    row = inbox.locator("tr.lead", has_text="Ольга Браузерова")
    expect(row).to_contain_text("Обратный звонок")
    expect(row).to_contain_text("Перезвоните после обеда")
    expect(row).to_contain_text("google")
    expect(inbox.locator("#leads")).not_to_contain_text("Бот Ботов")
    expect(inbox.locator("#menu-leads")).to_contain_text("Неразобранное")

    # Accepted, the lead gives its deal the source and the tags the script collected.
    [lead] = [item for item in stack.ok("GET", "/leads")["items"]
              if item["name"] == "Ольга Браузерова"]
    assert lead["utm"] == {"utm_source": "google", "utm_campaign": "spring"}
    assert lead["referrer"].startswith("https://ads.example/")
    accepted = stack.ok("POST", f"/leads/{lead['id']}/accept", json={})
    deal = stack.ok("GET", f"/deals/{accepted['deal_id']}")["deal"]
    assert deal["source"] == "web_form"
    assert deal["source_detail"]["utm_campaign"] == "spring"
    assert deal["source_detail"]["page_url"] == website["url"]


def test_accepting_a_lead_whose_phone_matches_a_contact_attaches_to_that_client(
        stack: Any, login: Any) -> None:
    client = stack.ok("POST", "/clients", json={"kind": "person", "name": "Семён Дубликатов"})
    stack.ok("POST", f"/clients/{client['id']}/contacts",
             json={"name": "Семён Дубликатов", "phones": ["+7 (915) 444-55-66"]})
    key = stack.ok("POST", "/leads/keys", user="admin", json={"name": "Партнёр-браузер"})
    lead = requests.post(f"{stack.url}/api/v1/leads", headers={"X-Api-Key": key["key"]},
                         json={"name": "Семён", "phone": "89154445566",
                               "message": "Повторный заказ"}, timeout=10).json()
    wait_for(lambda: stack.ok("GET", f"/leads/{lead['id']}")["duplicates"],
             message="the duplicate found")
    page = login("anna")
    page.goto(f"{stack.url}/leads")
    row = page.locator(f"#lead-{lead['id']}")
    expect(row.locator(".duplicates")).to_contain_text("Семён Дубликатов")
    row.locator("button.accept").click()
    page.wait_for_url(lambda url: "/deals/" in url)
    deal_id = int(page.url.rsplit("/", 1)[1].split("?")[0])
    assert stack.ok("GET", f"/deals/{deal_id}")["deal"]["client_id"] == client["id"]
    expect(page.locator("#panel-feed")).to_contain_text("Повторный заказ")


def answer_of(question: str) -> str:
    """What a visitor works out from the question's text: "Сколько будет 7 плюс 4? …"."""
    words = question.split()
    a, op, b = int(words[2]), words[3], int(words[4].rstrip("?"))
    return str(a + b if op == "плюс" else a - b)


def set_captcha_after(admin: Any, stack: Any, value: int) -> None:
    admin.goto(f"{stack.url}/leads/settings")
    admin.fill("input[name=captcha_after]", str(value))
    with admin.expect_navigation():  # back on the page (its form's anchor kept)
        admin.click("#duty-form button")
    assert admin.input_value("input[name=captcha_after]") == str(value)


def test_after_a_failed_submission_the_visitor_answers_a_captcha_read_as_text(
        stack: Any, login: Any, browser: Any, website: dict[str, Any]) -> None:
    admin = login("admin")
    set_captcha_after(admin, stack, 1)
    try:
        admin.goto(f"{stack.url}/leads/forms")
        admin.fill("#new-form input[name=name]", "Форма с капчей")
        admin.fill("#new-form textarea[name=consent_text]", CONSENT)
        admin.fill("#new-form input[name=min_fill_seconds]", "0")
        admin.click("#new-form button")
        snippet = admin.locator("textarea.snippet").last.input_value()
        website["html"] = f"<!doctype html><html><body>{snippet}</body></html>"

        bot = browser.new_context().new_page()
        bot.goto(website["url"])
        bot.wait_for_selector("form.crm-form")
        expect(bot.locator(".crm-captcha")).to_have_count(0)  # nobody is asked at first
        bot.fill("input[name=name]", "Бот Капчевый")
        bot.fill("input[name=phone]", "+7 916 000-00-02")
        bot.evaluate("document.querySelector('input[name=website]').value = 'http://spam'")
        bot.check("input[name=consent]")
        bot.click("form.crm-form button[type=submit]")
        expect(bot.locator(".crm-status")).to_have_text("Спасибо! Мы свяжемся с вами.")

        # The same address again: the form now asks its question, as text in the label.
        visitor = browser.new_context(locale="ru-RU").new_page()
        visitor.goto(website["url"])
        question = visitor.locator(".crm-captcha label")
        expect(question).to_contain_text("Сколько будет")
        answer = visitor.get_by_label(question.inner_text().strip())
        visitor.fill("input[name=name]", "Ксения Капчина")
        visitor.fill("input[name=phone]", "+7 916 222-33-44")
        visitor.check("input[name=consent]")
        answer.fill("999")  # a slip: asked again, with a new question, typed fields kept
        visitor.click("form.crm-form button[type=submit]")
        expect(visitor.locator(".crm-status")).to_contain_text("Ответьте на вопрос")
        expect(visitor.locator("input[name=name]")).to_have_value("Ксения Капчина")
        expect(visitor.locator("input[name=captcha_answer]")).to_be_focused()
        text = visitor.locator(".crm-captcha label").inner_text()
        visitor.fill("input[name=captcha_answer]", answer_of(text))
        visitor.click("form.crm-form button[type=submit]")
        expect(visitor.locator(".crm-status")).to_have_text("Спасибо! Мы свяжемся с вами.")
        expect(visitor.locator(".crm-captcha")).to_have_count(0)

        admin.goto(f"{stack.url}/leads")
        expect(admin.locator("tr.lead", has_text="Ксения Капчина")).to_contain_text(
            "Форма с капчей")
        expect(admin.locator("#leads")).not_to_contain_text("Бот Капчевый")
    finally:
        set_captcha_after(admin, stack, 3)
