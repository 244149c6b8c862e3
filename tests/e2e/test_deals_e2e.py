"""Deals through the whole stack (every service a process, HTTP through the gateway):
contact-copy semantics across clients and deals (D7), the board, the deal page's panels,
files, administration."""
from __future__ import annotations

import re

import pytest
import requests

from tests.support.stack import PASSWORD, Stack, wait_for

pytestmark = pytest.mark.e2e

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def make_client(stack: Stack, name: str) -> dict:
    """A client without requisites: a private person needs none."""
    return stack.ok("POST", "/clients", json={"name": name, "kind": "person"})


def web(stack: Stack, username: str = "anna") -> requests.Session:
    """A signed-in browser session and its CSRF token."""
    session = requests.Session()
    response = session.post(f"{stack.url}/login", data={"username": username,
                                                        "password": PASSWORD}, timeout=10)
    assert response.status_code == 200, response.text[:200]
    token = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert token
    session.headers["X-CSRF-Token"] = token.group(1)
    return session


def test_deal_contacts_are_copies_and_a_contact_added_on_a_deal_joins_the_client(stack: Stack):
    client = make_client(stack, "ООО «Копия»")
    for name, phone in (("Пётр Сидоров", "+7 916 111-11-11"),
                        ("Елена Кузнецова", "8 495 222-22-22")):
        stack.ok("POST", f"/clients/{client['id']}/contacts",
                 json={"name": name, "phones": [phone]})
    deal = stack.ok("POST", "/deals", json={"name": "Первая", "client_id": client["id"]})
    peter, elena = deal["contacts"]
    assert (peter["name"], peter["is_main"], elena["is_main"]) == ("Пётр Сидоров", True, False)

    removed = stack.api("DELETE", f"/deals/{deal['id']}/contacts/{peter['contact_id']}")
    assert removed.status_code == 204
    client_now = stack.ok("GET", f"/clients/{client['id']}")
    assert sorted(c["name"] for c in client_now["contacts"]) == ["Елена Кузнецова", "Пётр Сидоров"]

    olga = stack.ok("POST", f"/deals/{deal['id']}/contacts",
                    json={"name": "Ольга Новая", "phones": ["+7 903 333-33-33"]})
    stack.ok("POST", f"/deals/{deal['id']}/contacts/{olga['contact_id']}/main")
    page = stack.ok("GET", f"/deals/{deal['id']}")
    assert {c["name"]: c["is_main"] for c in page["deal"]["contacts"]} == \
        {"Елена Кузнецова": False, "Ольга Новая": True}
    client_now = stack.ok("GET", f"/clients/{client['id']}")
    assert "Ольга Новая" in [c["name"] for c in client_now["contacts"]]

    second = stack.ok("POST", "/deals", json={"name": "Вторая", "client_id": client["id"]})
    assert sorted(c["name"] for c in second["contacts"]) == \
        ["Елена Кузнецова", "Ольга Новая", "Пётр Сидоров"]


def test_a_deal_made_before_its_client_had_contacts_gets_the_first_one(stack: Stack):
    client = make_client(stack, "ООО «Пусто»")
    deal = stack.ok("POST", "/deals", json={"name": "Ранняя", "client_id": client["id"]})
    assert deal["contacts"] == []
    stack.ok("POST", f"/clients/{client['id']}/contacts",
             json={"name": "Первый Контакт", "phones": ["+7 926 000-00-07"]})
    wait_for(lambda: stack.ok("GET", f"/deals/{deal['id']}")["deal"]["contacts"],
             message="the client's first contact on the deal")


def test_the_board_moves_a_deal_and_sums_its_columns(stack: Stack):
    client = make_client(stack, "ООО «Доска»")
    made = [stack.ok("POST", "/deals", json={"name": f"Доска {i}", "client_id": client["id"],
                                             "expected_amount": "1000.50"}) for i in range(3)]
    board = stack.ok("GET", "/deals/board?client=Доска")
    new = next(c for c in board["columns"] if c["status"]["code"] == "new")
    assert (new["count"], new["amount"]) == (3, "3001.50")
    moved = stack.ok("POST", f"/deals/{made[0]['id']}/status",
                     json={"status": "proposal", "version": made[0]["version"]})
    stale = stack.api("POST", f"/deals/{made[0]['id']}/status",
                      json={"status": "contract", "version": made[0]["version"]})
    assert stale.status_code == 409
    board = stack.ok("GET", "/deals/board?client=Доска")
    counts = {c["status"]["code"]: c["count"] for c in board["columns"]}
    assert (counts["new"], counts["proposal"]) == (2, 1)
    history = stack.ok("GET", f"/deals/{moved['id']}/history")
    assert ("status", "new", "proposal") in [(h["field"], h["old_value"], h["new_value"])
                                             for h in history]
    # heads see everyone's deals by default; a manager sees their own
    assert stack.ok("GET", "/deals/board?client=Доска", user="head")["total"]["count"] == 3
    ivan = next(u["id"] for u in stack.ok("GET", "/admin/users", user="admin")
                if u["username"] == "ivan")
    assert stack.ok("GET", f"/deals/board?client=Доска&manager={ivan}")["total"]["count"] == 0


def test_pages_render_the_board_the_table_and_the_deal(stack: Stack):
    session = web(stack)
    client = make_client(stack, "ООО «Страницы»")
    deal = stack.ok("POST", "/deals", json={"name": "Страничная", "client_id": client["id"]})
    kanban = session.get(f"{stack.url}/deals?mode=kanban", timeout=10).text
    assert 'id="kanban"' in kanban and "Страничная" in kanban and "Нет задач" in kanban
    table = session.get(f"{stack.url}/deals?mode=table", timeout=10).text
    assert 'id="deals-table"' in table and "Страничная" in table
    remembered = session.get(f"{stack.url}/deals", timeout=10).text
    assert 'id="deals-table"' in remembered  # the mode is the user's setting
    page = session.get(f"{stack.url}/deals/{deal['id']}", timeout=10)
    assert page.status_code == 200
    for panel in ("panel-deal", "panel-contacts", "panel-orders", "panel-calculator",
                  "panel-parties", "panel-history", "panel-feed", "panel-reminders",
                  "panel-payments"):
        assert f'id="{panel}"' in page.text


def test_a_comment_with_an_image_and_a_document_through_the_api(stack: Stack):
    client = make_client(stack, "ООО «Файлы»")
    deal = stack.ok("POST", "/deals", json={"name": "С файлами", "client_id": client["id"]})
    files = [("files", ("scheme.png", PNG, "application/octet-stream")),
             ("files", ("fake.png", b"<script>alert(1)</script>", "image/png"))]
    comment = stack.ok("POST", f"/deals/{deal['id']}/comments", data={"text": "Схема"},
                       files=files)
    real, fake = comment["attachments"]
    assert real["content_type"] == "image/png"
    assert fake["content_type"] == "application/octet-stream"  # the bytes decide
    image = stack.api("GET", f"/deals/{deal['id']}/files/{real['key']}")
    assert image.status_code == 200 and image.content == PNG
    assert image.headers["Content-Type"] == "image/png"
    download = stack.api("GET", f"/deals/{deal['id']}/files/{fake['key']}")
    assert download.headers["Content-Disposition"].startswith("attachment")
    other = stack.ok("POST", "/deals", json={"name": "Чужая", "client_id": client["id"]})
    assert stack.api("GET", f"/deals/{other['id']}/files/{real['key']}").status_code == 404
    page = stack.ok("GET", f"/deals/{deal['id']}")
    assert [e["kind"] for e in page["feed"]] == ["comment"]


def test_orders_calculator_and_plan_reach_payments(stack: Stack):
    client = make_client(stack, "ООО «Расчёт»")
    deal = stack.ok("POST", "/deals", json={"name": "Расчётная", "client_id": client["id"]})
    stack.ok("PUT", f"/deals/{deal['id']}/calculation", json={"lines": [
        {"name": "Лицензия", "quantity": "2", "unit_price": "500.00", "discount": "10"}]})
    stack.ok("POST", f"/deals/{deal['id']}/calculation/plan",
             json={"parts": 2, "first_due_date": "2030-01-15"})
    # one budget_changed per planned payment: the second one brings the whole plan
    page = wait_for(lambda: (p := stack.ok("GET", f"/deals/{deal['id']}"))["deal"]["budget"]
                    == "900.00" and p, message="the budget from the new payment plan")
    assert page["deal"]["amount"] == "900.00" and page["payments"]["budget"] == "900.00"
    assert [p["amount"] for p in page["payments"]["payments"]] == ["450.00", "450.00"]
    order = stack.ok("POST", f"/deals/{deal['id']}/orders", json={"lines": [
        {"name": "Лицензия", "quantity": "2", "unit_price": "450.00"}]})
    assert order["amount"] == "900.00"
    bad = stack.api("POST", f"/deals/{deal['id']}/orders", json={"lines": [{"name": "X"}]})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "lines.0.unit_price"


def test_administrator_renames_the_deals_section_everywhere(stack: Stack):
    assert stack.api("PUT", "/admin/section-names",
                     json={"deals": {"ru": "Проекты"}}).status_code == 403
    stack.ok("PUT", "/admin/section-names", user="admin",
             json={"deals": {"ru": "Проекты", "en": "Projects"}})
    try:
        html = web(stack).get(f"{stack.url}/deals", timeout=10).text
        assert "<title>Проекты</title>" in html and ">Проекты</a>" in html
    finally:
        stack.ok("PUT", "/admin/section-names", user="admin", json={})
    status = stack.ok("POST", "/admin/statuses", user="admin",
                      json={"name": "Пауза", "color": "#aaaaaa", "kind": "open"})
    renamed = stack.ok("PATCH", f"/admin/statuses/{status['id']}", user="admin",
                       json={"name": "На паузе", "color": "#bbbbbb", "kind": "open"})
    assert renamed["code"] == status["code"] and renamed["name"] == "На паузе"
    assert stack.api("DELETE", f"/admin/statuses/{status['id']}", user="admin").status_code == 204


def test_administrator_manages_users_and_cannot_lock_themselves_out(stack: Stack):
    made = stack.ok("POST", "/admin/users", user="admin", json={
        "username": "petr", "full_name": "Пётр Новиков", "password": "long-enough-1",
        "roles": ["manager"]})
    assert made["roles"] == ["manager"] and made["active"] is True
    assert stack.api("POST", "/admin/users", user="admin", json={
        "username": "petr", "full_name": "X", "password": "long-enough-1",
        "roles": ["manager"]}).json()["error"]["field"] == "username"
    head = stack.ok("PATCH", f"/admin/users/{made['id']}", user="admin",
                    json={"roles": ["head"], "full_name": "Пётр Новиков"})
    assert head["roles"] == ["head"]
    me = stack.ok("GET", "/me", user="admin")
    locked = stack.api("PATCH", f"/admin/users/{me['id']}", user="admin",
                       json={"roles": ["manager"]})
    assert locked.status_code == 422 and locked.json()["error"]["field"] == "roles"
    assert stack.api("GET", "/admin/users", user="anna").status_code == 403
