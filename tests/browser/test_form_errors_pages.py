"""In Chromium, at 1440 and 390 px: a refused form comes back with each error beside its
field, what was typed kept and the form in view; the deal type editor is made of fields
and add/remove buttons.  Every page checked fits the screen and passes axe-core."""
from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_ux import WIDEST, open_as, serious_violations
from tests.support.stack import Stack

pytestmark = pytest.mark.browser


def fits_and_passes_axe(page: Page) -> list[str]:
    found = serious_violations(page)
    overflow = page.evaluate("() => document.scrollingElement.scrollWidth - window.innerWidth")
    if overflow > 0:
        found.append(f"scrolls sideways by {overflow} px: {page.evaluate(WIDEST)}")
    return found


@pytest.mark.parametrize("width", [1440, 390])
def test_a_refused_deal_form_keeps_the_input_beside_its_errors_and_stays_in_view(
        stack: Stack, browser: Browser, width: int):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Поле»", "kind": "person"})
    deal = stack.ok("POST", "/deals", json={"name": "Полевая", "client_id": client["id"]})
    page = open_as(browser, stack, "anna", width)
    page.goto(f"{stack.url}/deals/{deal['id']}")
    form = page.locator("#add-payment")
    form.locator("input[name=amount]").fill("сто тысяч")
    form.locator("input[name=due_date]").fill("2030-01-15")
    form.locator("input[name=comment]").fill("аванс <b>")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert page.url.endswith("#add-payment")
    amount = page.locator("#add-payment input[name=amount]")
    expect(amount).to_have_value("сто тысяч")
    expect(amount).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#add-payment-amount-error")).to_contain_text("сто тысяч")
    expect(page.locator("#add-payment input[name=comment]")).to_have_value("аванс <b>")
    expect(page.locator("#add-payment")).to_be_in_viewport()
    assert fits_and_passes_axe(page) == []

    page.goto(f"{stack.url}/clients/{client['id']}")
    contact = page.locator("#add-contact")
    contact.locator("input[name=name]").fill("Пётр")
    contact.locator("input[name=phone]").fill("123")
    contact.locator("button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator("#add-contact-phone-error")).to_be_visible()
    expect(page.locator("#add-contact input[name=name]")).to_have_value("Пётр")
    expect(page.locator("#add-contact")).to_be_in_viewport()
    assert fits_and_passes_axe(page) == []
    page.context.close()


@pytest.mark.parametrize("width", [1440, 390])
def test_the_deal_type_editor_is_a_form_of_fields_with_add_and_remove_buttons(
        stack: Stack, browser: Browser, width: int):
    page = open_as(browser, stack, "admin", width)
    page.goto(f"{stack.url}/admin/types/new")
    assert page.locator("textarea[name=stage_tasks], textarea[name=stage_rules]").count() == 0
    expect(page.locator(".stage-block")).to_have_count(1)  # one empty stage, not two
    page.fill("#type-form input[name=name]", f"Монтаж {width}")
    first = page.locator(".stage-block").nth(0)
    first.locator("input[name$=_name]").fill("Замер")
    first.locator("input[name$=_code]").fill("measure")
    first.get_by_role("button", name="Добавить задачу").click()
    task = first.locator(".task-row").nth(0)
    task.locator("input[name$=_task_hours]").fill("4")
    task.locator("select[name$=_task_assignee]").select_option("role:head")
    task.locator("input[name$=_task_text]").fill("Согласовать замер")
    first.get_by_role("button", name="Добавить задачу").click()
    expect(first.locator(".task-row")).to_have_count(2)
    first.locator(".task-row").nth(1).get_by_role("button", name="Убрать").click()
    expect(first.locator(".task-row")).to_have_count(1)
    page.click("#stage-add")
    second = page.locator(".stage-block").nth(1)
    second.locator("input[name$=_name]").fill("Монтаж")
    second.locator("input[name$=_code]").fill("mount")
    # a rule may point at a stage added in the same save: the target lists the form's stages
    first.get_by_role("button", name="Добавить правило").click()
    rule = first.locator(".rule-row").nth(0)
    rule.locator("select[name$=_rule_on]").select_option("fully_paid")
    target = rule.locator("select[name$=_rule_to]")
    target.focus()
    target.select_option(label="Монтаж")
    assert fits_and_passes_axe(page) == []
    with page.expect_navigation():
        page.click("#type-form button[type=submit]")
    assert page.locator("#type-form .alert").count() == 0, page.locator("#type-form").inner_text()
    blocks = page.locator(".stage-block")
    expect(blocks).to_have_count(2)
    expect(blocks.nth(0).locator("input[name$=_task_text]")).to_have_value("Согласовать замер")
    expect(blocks.nth(0).locator("select[name$=_task_assignee]")).to_have_value("role:head")
    expect(blocks.nth(0).locator("select[name$=_rule_to]")).to_have_value("mount")
    saved = [t for t in stack.ok("GET", "/deal-types", user="admin")
             if t["name"] == f"Монтаж {width}"]
    assert [s["code"] for s in saved[0]["stages"]] == ["measure", "mount"]
    assert saved[0]["stages"][0]["rules"] == [{"on": "fully_paid", "to_stage": "mount"}]
    page.context.close()


def test_a_new_status_is_placed_before_the_closed_ones(stack: Stack, browser: Browser):
    page = open_as(browser, stack, "admin", 1440)
    page.goto(f"{stack.url}/admin")
    form = page.locator("#new-status")
    form.locator("input[name=name]").fill("Переговоры")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    kinds = [s["kind"] for s in stack.ok("GET", "/statuses")]
    names = [s["name"] for s in stack.ok("GET", "/statuses")]
    position = names.index("Переговоры")
    assert all(k == "open" for k in kinds[:position + 1]), (names, kinds)
    assert "Раздел «Сделки»" in page.locator("#section-names").inner_text()
    page.context.close()


@pytest.mark.parametrize("width", [1440, 390])
def test_client_and_deal_fields_are_edited_in_place_with_toasts(stack: Stack, browser: Browser,
                                                                 width: int):
    client = stack.ok("POST", "/clients", json={"name": f"ООО «На месте {width}»"})
    deal = stack.ok("POST", "/deals", json={"name": "Местная", "client_id": client["id"],
                                            "expected_amount": "1000"})
    page = open_as(browser, stack, "anna", width)
    page.goto(f"{stack.url}/clients/{client['id']}")
    expect(page.locator("#client-form")).not_to_be_visible()  # no always-open form
    page.click("#client-field-city")
    page.fill("#panel-client input.inline-input", "Тверь")
    page.keyboard.press("Enter")
    expect(page.locator("#toasts .toast").last).to_have_text("Сохранено")
    expect(page.locator("#client-field-city")).to_have_text("Тверь")
    page.click("#client-field-website")
    page.fill("#panel-client input.inline-input", "не адрес")
    page.keyboard.press("Enter")
    expect(page.locator("#toasts .toast-error")).to_be_visible()
    expect(page.locator("#client-field-website")).to_have_text("—")
    assert fits_and_passes_axe(page) == []
    page.reload()
    expect(page.locator("#client-field-city")).to_have_text("Тверь")

    page.goto(f"{stack.url}/deals/{deal['id']}")
    page.click("#deal-expected")
    page.fill("#panel-deal input.inline-input", "250000,50")
    page.keyboard.press("Enter")
    expect(page.locator("#toasts .toast").last).to_have_text("Сохранено")
    expect(page.locator("#deal-expected")).to_have_text("250\u202f000,50\u202f₽")
    assert stack.ok("GET", f"/deals/{deal['id']}")["deal"]["expected_amount"] == "250000.50"
    page.context.close()
