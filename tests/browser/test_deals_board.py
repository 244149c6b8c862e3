"""A manager in a real Chromium: drags a card across the kanban, sees "No tasks" go when a
task is set, attaches an image and opens it large."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.stack import Stack

pytestmark = pytest.mark.browser

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def new_deal(stack: Stack, name: str) -> dict:
    client = stack.ok("POST", "/clients", json={"name": f"Клиент {name}", "kind": "person"})
    return stack.ok("POST", "/deals", json={"name": name, "client_id": client["id"],
                                            "expected_amount": "1500.00"})


def column(page, status: str):
    return page.locator(f'.column[data-status="{status}"]')


def test_a_card_dragged_to_another_column_stays_there_after_reload(stack: Stack, login, page):
    deal = new_deal(stack, "Перетаскиваемая")
    login("anna")
    page.goto(f"{stack.url}/deals?mode=kanban&q=Перетаскиваемая")
    card = page.locator(f'.deal-card[data-id="{deal["id"]}"]')
    expect(column(page, "new").locator(".col-count")).to_have_text("1")
    target = column(page, "qualification").locator(".cards")
    with page.expect_response(lambda r: r.url.endswith(f"/api/v1/deals/{deal['id']}/status")
                              and r.request.method == "POST") as moved:
        card.drag_to(target)
    assert moved.value.status == 200
    expect(column(page, "qualification").locator(".col-count")).to_have_text("1")
    expect(column(page, "qualification").locator(".col-sum")).to_contain_text("1 500,00")
    page.reload()
    expect(column(page, "qualification").locator(f'[data-id="{deal["id"]}"]')).to_be_visible()
    expect(column(page, "new").locator(".col-count")).to_have_text("0")
    page.goto(f"{stack.url}/deals?mode=kanban&manager=all")
    page.screenshot(path=str(stack.logs / "deals-board.png"))


def test_a_column_loads_more_cards_as_it_scrolls_and_a_card_opens_its_deal(stack: Stack,
                                                                           login, page):
    client = stack.ok("POST", "/clients", json={"name": "Клиент ленты", "kind": "person"})
    made = [stack.ok("POST", "/deals", json={"name": f"Лента {i:02d}", "client_id": client["id"]})
            for i in range(25)]
    login("anna")
    page.goto(f"{stack.url}/deals?mode=kanban&q=Лента")
    cards = column(page, "new").locator(".deal-card")
    expect(cards).to_have_count(20)
    column(page, "new").locator(".cards").evaluate("el => el.scrollTo(0, el.scrollHeight)")
    expect(cards).to_have_count(25)
    cards.last.locator(".deal-client").click()
    page.wait_for_url(f"**/deals/{made[0]['id']}")
    expect(page.locator("#panel-deal h1")).to_have_text("Лента 00")


def test_a_move_the_process_refuses_puts_the_card_back_with_the_reason(stack: Stack, login,
                                                                        page):
    sale = next(t for t in stack.ok("GET", "/deal-types") if not t["simple"])
    client = stack.ok("POST", "/clients", json={"name": "Клиент процесса", "kind": "person"})
    deal = stack.ok("POST", "/deals", json={"name": "Процессная", "client_id": client["id"],
                                            "type_id": sale["id"]})
    login("anna")
    page.goto(f"{stack.url}/deals?mode=kanban&q=Процессная")
    card = page.locator(f'.deal-card[data-id="{deal["id"]}"]')
    card.drag_to(column(page, "contract").locator(".cards"))
    expect(page.locator("#board-message")).to_contain_text("Квалификация")
    expect(column(page, "new").locator(f'[data-id="{deal["id"]}"]')).to_be_visible()
    assert stack.ok("GET", f"/deals/{deal['id']}")["deal"]["status"]["code"] == "new"


def test_no_tasks_disappears_when_a_reminder_is_added(stack: Stack, login, page):
    deal = new_deal(stack, "Без задач")
    login("anna")
    page.goto(f"{stack.url}/deals?mode=kanban&q=Без задач")
    card = page.locator(f'.deal-card[data-id="{deal["id"]}"]')
    expect(card.locator(".no-tasks")).to_have_text("Нет задач")
    card.locator(".deal-name").click()
    page.fill("#reminder-form input[name=text]", "Позвонить клиенту")
    page.fill("#reminder-form input[name=due_at]", "2030-05-06T10:30")
    page.click("#reminder-form button[type=submit]")
    expect(page.locator("#panel-reminders")).to_contain_text("Позвонить клиенту")
    page.goto(f"{stack.url}/deals?mode=kanban&q=Без задач")
    expect(card.locator(".no-tasks")).to_have_count(0)
    expect(card.locator(".deal-task")).to_have_text("06.05.2030 10:30")


def test_an_attached_image_shows_as_a_thumbnail_that_opens_large(stack: Stack, login, page,
                                                                   tmp_path):
    deal = new_deal(stack, "С картинкой")
    picture = tmp_path / "схема.png"
    picture.write_bytes(PNG)
    login("anna")
    page.goto(f"{stack.url}/deals/{deal['id']}")
    page.fill("#comment-form textarea[name=text]", "Схема подключения")
    page.set_input_files("#comment-form input[name=files]", str(picture))
    page.click("#comment-form button[type=submit]")
    thumb = page.locator("#panel-feed img.thumb")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.complete && img.naturalWidth") == 1
    thumb.click()
    expect(page.locator(".lightbox img")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator(".lightbox")).to_have_count(0)
    page.screenshot(path=str(stack.logs / "deal-page-feed.png"), full_page=True)
