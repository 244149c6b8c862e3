"""How the pages read and fit: one budget, one way to show values, phone layout, and
accessibility checked by axe-core, at 1440 and 390 px in Debian's Chromium."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.infra import wait_until
from tests.support.stack import PASSWORD, Stack

pytestmark = pytest.mark.browser
S = "\u202f"
AXE = Path(__file__).resolve().parents[2] / "gateway/node_modules/axe-core/axe.min.js"


def open_as(browser: Browser, stack: Stack, username: str, width: int) -> Page:
    context = browser.new_context(locale="ru-RU", viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{stack.url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    return page


def test_the_deal_page_names_one_budget_and_offers_to_reconcile_plan_and_calculation(
        stack: Stack, login, page):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Бюджет»"})
    deal = stack.ok("POST", "/deals", json={"name": "Поставка", "client_id": client["id"],
                                            "expected_amount": "300000"})
    login("anna")
    page.goto(f"{stack.url}/deals/{deal['id']}")
    expect(page.locator("#deal-amount")).to_have_text(f"300{S}000,00{S}₽")
    expect(page.locator("#budget-plan")).to_contain_text("графика платежей нет")
    expect(page.locator("#budget")).to_contain_text("графика платежей нет")
    assert page.locator("#budget-gap").count() == 0

    stack.ok("POST", f"/deals/{deal['id']}/payments",
             json={"amount": "150000.50", "due_date": str(date.today())})
    wait_until(lambda: stack.ok("GET", f"/deals/{deal['id']}")["deal"]["has_plan"],
               message="the plan's budget reached the deal")
    page.reload()
    expect(page.locator("#deal-amount")).to_have_text(f"150{S}000,50{S}₽")
    expect(page.locator("#budget-expected")).to_contain_text(f"300{S}000,00{S}₽")
    expect(page.locator("#budget-outstanding")).to_have_text(f"150{S}000,50{S}₽")
    expect(page.locator("#budget-gap")).to_contain_text("не совпадает с расчётом")

    page.click("#calculation-from-plan")
    expect(page.locator("#budget-expected")).to_contain_text(f"150{S}000,50{S}₽")
    assert page.locator("#budget-gap").count() == 0


def test_a_client_is_created_from_just_a_phone_and_named_by_its_number(stack: Stack, login,
                                                                        page):
    login("anna")
    page.goto(f"{stack.url}/clients")
    page.fill("#new-client input[name=contact_phone]", "8 915 777-33-21")
    page.click("#new-client button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Клиент №")
    expect(page.locator("#panel-contacts")).to_contain_text("+7 915 777-33-21")
    expect(page.locator("body")).to_contain_text("Юрлицо")


def test_a_reminder_dated_in_the_past_asks_first_and_then_shows_red(stack: Stack, login,
                                                                     page):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Срок»"})
    stack.ok("POST", "/deals", json={"name": "Срочная", "client_id": client["id"]})
    login("anna")
    page.goto(f"{stack.url}/clients/{client['id']}")
    form = page.locator("#client-reminder-form")
    form.locator("input[name=text]").fill("Позвонить")
    form.locator("input[name=due_at]").fill("2020-01-15T10:00")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    form.locator("button[type=submit]").click()
    expect(page.locator("#panel-reminders li.reminder")).to_have_count(0)
    assert asked and "прошёл" in asked[0]

    page.once("dialog", lambda dialog: dialog.accept())
    form.locator("button[type=submit]").click()
    reminder = page.locator("#panel-reminders li.reminder")
    expect(reminder).to_contain_text("15.01.2020 10:00")
    expect(reminder).to_have_class("reminder overdue")
    expect(reminder.locator(".due")).to_have_css("color", "rgb(220, 38, 38)")


def test_a_call_made_from_a_mobile_is_logged_by_hand(stack: Stack, login, page):
    login("anna")
    page.goto(f"{stack.url}/calls")
    page.click("#log-call summary")
    page.fill("#log-call input[name=other_number]", "8 915 777-33-21")
    page.fill("#log-call input[name=minutes]", "3")
    page.click("#log-call button[type=submit]")
    row = page.locator("#calls tbody tr").first
    expect(row).to_contain_text("+7 915 777-33-21")
    expect(row.locator(".call-result")).to_have_text("3:00")


def test_small_things_read_right(stack: Stack, login, page):
    import requests

    icon = requests.get(f"{stack.url}/favicon.ico", timeout=5)
    assert icon.status_code == 200 and icon.headers["Content-Type"].startswith("image/svg")
    login("anna")
    page.goto(f"{stack.url}/profile")
    disabled = page.locator("#preferences input[type=checkbox][disabled]")
    assert disabled.count() > 0
    for i in range(disabled.count()):
        reason = disabled.nth(i).get_attribute("aria-describedby")
        expect(page.locator(f"#{reason}")).to_have_text("канал не настроен администратором")


def test_my_tasks_groups_reminders_completes_from_the_list_and_shows_a_calendar(
        stack: Stack, login, page):
    from datetime import datetime, timedelta

    client = stack.ok("POST", "/clients", json={"name": "ООО «Задачи»"})
    deal = stack.ok("POST", "/deals", json={"name": "Задачная", "client_id": client["id"]})
    anna = stack.ok("GET", "/me")["id"]
    soon = (datetime.now() + timedelta(days=30)).strftime("%Y-%m-%dT10:00")
    for text, due in (("Просроченная", "2020-01-15T10:00"), ("Будущая", soon)):
        stack.ok("POST", f"/deals/{deal['id']}/reminders",
                 json={"text": text, "due_at": due, "assignee_id": anna})
    stack.ok("POST", f"/deals/{deal['id']}/payments",
             json={"amount": "5000", "due_date": str(date.today())})

    login("anna")
    page.click("#menu-tasks")
    overdue = page.locator("#tasks-overdue .reminder.overdue", has_text="Просроченная")
    expect(overdue).to_have_count(1)
    expect(page.locator("#tasks-later")).to_contain_text("Будущая")
    overdue.locator("button.complete").click()
    expect(page.locator("#tasks-overdue")).not_to_contain_text("Просроченная")

    page.click("text=Месяц")
    today = page.locator(f"#calendar td[data-day='{date.today().isoformat()}']")
    # payments learns the deal's manager from deals' events: reload until it has
    ours = today.locator(".cal-payment", has_text="Задачная")
    wait_until(lambda: page.reload() or ours.count() > 0,
               message="the due payment on the calendar")
    expect(ours).to_contain_text(f"5{S}000,00{S}₽")
    page.click("text=Неделя")
    expect(page.locator("#calendar tbody tr")).to_have_count(1)


def test_the_header_search_finds_by_phone_in_any_format_and_opens_with_the_keyboard(
        stack: Stack, login, page):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Искомое»", "inn": "7728168971"})
    stack.ok("POST", f"/clients/{client['id']}/contacts",
             json={"name": "Семён Искалов", "phones": ["+7 915 444-12-34"],
                   "emails": ["semen@iskomoe.test"]})
    deal = stack.ok("POST", "/deals", json={"name": "Искомая поставка",
                                            "client_id": client["id"]})
    login("anna")
    search = page.locator("#global-search")
    search.fill("8 (915) 444 12 34")
    results = page.locator("#global-search-results")
    expect(results).to_contain_text("Семён Искалов")
    expect(results).to_contain_text("ООО «Искомое»")

    search.fill("")
    search.type(f"№{deal['id']}")
    expect(results.locator("[role=option]").first).to_contain_text("Искомая поставка")
    search.press("ArrowDown")
    search.press("ArrowUp")
    search.press("Enter")
    page.wait_for_url(f"**/deals/{deal['id']}")

    for text, found in (("7728168971", "ООО «Искомое»"), ("semen@iskomoe.test", "Семён")):
        page.locator("#global-search").fill(text)
        expect(page.locator("#global-search-results")).to_contain_text(found)


def test_a_deals_client_is_changed_with_a_search_as_you_type_picker(stack: Stack, login,
                                                                    page):
    first = stack.ok("POST", "/clients", json={"name": "ООО «Первый»"})
    second = stack.ok("POST", "/clients", json={"name": "ООО «Подборный»"})
    deal = stack.ok("POST", "/deals", json={"name": "Смена клиента", "client_id": first["id"]})
    login("anna")
    page.goto(f"{stack.url}/deals/{deal['id']}")
    page.click("#panel-edit summary")
    page.locator("#panel-edit .ts-wrapper .ts-control").click()
    page.keyboard.type("Подбор")
    page.locator(".ts-dropdown .option", has_text="ООО «Подборный»").click()
    expect(page.locator("#deal-client-picker")).to_have_value(str(second["id"]))
    page.locator("#panel-edit button[type=submit]").click()
    expect(page.locator("#panel-client")).to_contain_text("ООО «Подборный»")
    assert stack.ok("GET", f"/deals/{deal['id']}")["deal"]["client_id"] == second["id"]


MAIN_PAGES = ("/deals", "/deals?mode=table", "/deals/{deal}", "/clients", "/clients/{client}",
              "/calls", "/tasks", "/tasks?view=month", "/notifications", "/profile",
              "/payments/forecast", "/payments/overdue", "/search?q=ООО")


# The elements that stick out on the right, innermost first: what a failure should name.
WIDEST = """() => {
  const out = e => e.getBoundingClientRect().right > window.innerWidth + 1;
  return Array.from(document.querySelectorAll('body *'))
    .filter(e => out(e) && !Array.from(e.children).some(out)).slice(0, 4)
    .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
              (typeof e.className === 'string' && e.className ? '.' + e.className : ''));
}"""


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page, as readable lines."""
    if not page.evaluate("() => !!window.axe"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {node['target']}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")
            for node in v["nodes"][:3]]


@pytest.mark.parametrize("width", [1440, 390])
def test_main_pages_fit_the_screen_and_pass_axe(stack: Stack, browser: Browser, width: int):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Широкое название для узкого экрана»"})
    stack.ok("POST", f"/clients/{client['id']}/contacts",
             json={"name": "Ирина Котова", "phones": ["+7 915 777-33-21"]})
    deal = stack.ok("POST", "/deals", json={"name": "Поставка оборудования на склад",
                                            "client_id": client["id"],
                                            "expected_amount": "822505"})
    stack.ok("POST", f"/deals/{deal['id']}/payments",
             json={"amount": "120000", "due_date": str(date.today())})
    problems = {}
    for username, paths in (("head", MAIN_PAGES), ("admin", ("/admin",))):
        page = open_as(browser, stack, username, width)
        for path in paths:
            page.goto(stack.url + path.format(deal=deal["id"], client=client["id"]))
            overflow = page.evaluate(
                "() => document.scrollingElement.scrollWidth - window.innerWidth")
            found = serious_violations(page)
            if overflow > 0:
                found.append(f"scrolls sideways by {overflow} px: {page.evaluate(WIDEST)}")
            if found:
                problems[path] = found
        page.context.close()
    assert problems == {}, "\n".join(f"{p}: {f}" for p, f in problems.items())


def test_a_kanban_card_moves_to_another_status_with_the_keyboard(stack: Stack, login, page):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Клавиатура»"})
    deal = stack.ok("POST", "/deals", json={"name": "Клавишная", "client_id": client["id"]})
    login("anna")
    page.goto(f"{stack.url}/deals?mode=kanban&q=Клавишная")
    card = page.locator(f'.deal-card[data-id="{deal["id"]}"]')
    card.locator(".move-to summary").focus()
    page.keyboard.press("Enter")
    card.locator(".move-to select").select_option("qualification")
    card.locator(".move-to button").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/deals?mode=kanban*")
    moved = page.locator(f'.column[data-status="qualification"] [data-id="{deal["id"]}"]')
    expect(moved).to_be_visible()
    assert stack.ok("GET", f"/deals/{deal['id']}")["deal"]["status"]["code"] == "qualification"


def test_a_user_who_chose_another_time_zone_sees_every_time_in_it(stack: Stack, login, page):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Пояс»"})
    deal = stack.ok("POST", "/deals", json={"name": "Уральская", "client_id": client["id"]})
    anna = stack.ok("GET", "/me")["id"]
    stack.ok("POST", f"/deals/{deal['id']}/reminders",
             json={"text": "Созвон", "due_at": "2030-05-06T10:00", "assignee_id": anna})
    login("anna")
    page.goto(f"{stack.url}/deals/{deal['id']}")
    expect(page.locator("#panel-reminders .due")).to_have_text("06.05.2030 10:00")
    page.goto(f"{stack.url}/profile")
    page.select_option("#zone-form select[name=timezone]", "Asia/Yekaterinburg")
    page.click("#zone-form button[type=submit]")
    expect(page.locator("#saved")).to_be_visible()
    page.goto(f"{stack.url}/deals/{deal['id']}")
    expect(page.locator("#panel-reminders .due")).to_have_text("06.05.2030 12:00")
    # a time typed on the page is meant in the zone the page shows: 09:30 in
    # Yekaterinburg (UTC+5), not in the company's Moscow
    page.fill("#reminder-form input[name=text]", "Встреча на Урале")
    page.fill("#reminder-form input[name=due_at]", "2030-05-07T09:30")
    page.click("#reminder-form button[type=submit]")
    expect(page.locator("#panel-reminders")).to_contain_text("07.05.2030 09:30")
    typed = [r for r in stack.ok("GET", f"/deals/{deal['id']}")["deal"]["reminders"]
             if r["text"] == "Встреча на Урале"]
    assert [r["due_at"][:19] for r in typed] == ["2030-05-07T04:30:00"]
    # the company's zone again: the other tests' times are Moscow's
    page.goto(f"{stack.url}/profile")
    page.select_option("#zone-form select[name=timezone]", "")
    page.click("#zone-form button[type=submit]")
    expect(page.locator("#saved")).to_be_visible()


def test_the_deal_name_is_edited_in_place_with_a_toast_and_the_page_stays_usable(
        stack: Stack, login, page):
    client = stack.ok("POST", "/clients", json={"name": "ООО «На месте»"})
    deal = stack.ok("POST", "/deals", json={"name": "Старое имя", "client_id": client["id"]})
    login("anna")
    page.goto(f"{stack.url}/deals/{deal['id']}")
    name = page.locator("#deal-name")
    name.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Control+a")
    page.keyboard.type("Новое имя")
    page.keyboard.press("Enter")
    expect(page.locator("#toasts .toast")).to_have_text("Сохранено")
    expect(name).to_have_text("Новое имя")

    name.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Backspace")
    page.keyboard.press("Enter")
    expect(page.locator("#toasts .toast-error")).to_be_visible()
    expect(name).to_have_text("Новое имя")

    page.select_option("#status-form select[name=status]", "proposal")  # version followed
    page.click("#status-form button[type=submit]")
    expect(page.locator("#status-form select[name=status]")).to_have_value("proposal")
    assert stack.ok("GET", f"/deals/{deal['id']}")["deal"]["name"] == "Новое имя"
