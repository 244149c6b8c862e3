"""The whole stack as processes, through the gateway's HTTP: the thin slice through every
service (issue: the running CRM skeleton)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


def make_client_with_contact(stack: Stack, phone: str) -> dict:
    client = stack.ok("POST", "/clients", json={"name": "ООО «Тест»", "inn": "7707083893"})
    stack.ok("POST", f"/clients/{client['id']}/contacts",
             json={"name": "Пётр Сидоров", "phones": [phone]})
    return client


def test_a_deal_collects_payments_calls_and_notifies_its_manager(stack: Stack):
    client = make_client_with_contact(stack, "8 916 555-12-34")
    deal = stack.ok("POST", "/deals", json={"name": "Поставка", "client_id": client["id"]})
    assert [c["name"] for c in deal["contacts"]] == ["Пётр Сидоров"]
    assert deal["contacts"][0]["is_main"] is True

    payment = stack.ok("POST", f"/deals/{deal['id']}/payments",
                       json={"amount": "1500.50", "due_date": str(date.today())})
    stack.ok("POST", f"/deals/{deal['id']}/payments",
             json={"amount": "499.50", "due_date": str(date.today() + timedelta(days=30))})
    # budget_changed travels payments -> deals as an event
    wait_for(lambda: stack.ok("GET", f"/deals/{deal['id']}")["deal"]["amount"] == "2000.00",
             message="the deal budget to follow its payment plan")

    stack.ok("POST", f"/payments/{payment['id']}/receipts", json={"amount": "1500.50"})
    started = datetime.now(UTC) - timedelta(minutes=5)
    stack.ok("POST", "/calls", json={
        "direction": "inbound", "from": "+7 (916) 555-12-34", "to": "+74950000000",
        "started_at": started.isoformat(),
        "answered_at": (started + timedelta(seconds=3)).isoformat(),
        "ended_at": (started + timedelta(seconds=63)).isoformat()})

    notifications = wait_for(lambda: stack.ok("GET", "/notifications")["items"],
                             message="the manager's notification")
    assert notifications[0]["kind"] == "payment_received"
    assert "1 500,50" in notifications[0]["title"]

    page = stack.ok("GET", f"/deals/{deal['id']}")
    assert page["unavailable"] == {}
    assert page["client"]["name"] == "ООО «Тест»"
    assert page["payments"]["paid"] == "1500.50"
    assert page["payments"]["outstanding"] == "499.50"
    kinds = [entry["kind"] for entry in page["feed"]]
    assert sorted(kinds) == ["call", "receipt"]
    call = next(e["item"] for e in page["feed"] if e["kind"] == "call")
    assert call["duration_seconds"] == 60 and call["other_e164"] == "+79165551234"


def test_the_deal_page_shows_the_client_the_deal_has_now(stack: Stack):
    """The gateway asks for the client the deal was last shown with together with the deal;
    a deal moved to another client shows that one at once, and goes on showing it."""
    first = make_client_with_contact(stack, "+7 903 222-33-44")
    other = stack.ok("POST", "/clients", json={"name": "ООО «Второй»", "inn": "7728168971"})
    deal = stack.ok("POST", "/deals", json={"name": "Переезд", "client_id": first["id"]})
    assert stack.ok("GET", f"/deals/{deal['id']}")["client"]["id"] == first["id"]
    assert stack.ok("GET", f"/deals/{deal['id']}")["client"]["id"] == first["id"]
    stack.ok("PATCH", f"/deals/{deal['id']}", json={"client_id": other["id"]})
    for _ in range(2):
        page = stack.ok("GET", f"/deals/{deal['id']}")
        assert page["unavailable"] == {}
        assert (page["deal"]["client_id"], page["client"]["id"], page["client"]["name"]) \
            == (other["id"], other["id"], "ООО «Второй»")


def test_deal_page_renders_with_a_panel_unavailable_when_its_service_is_stopped(stack: Stack):
    client = make_client_with_contact(stack, "+7 903 111-22-33")
    deal = stack.ok("POST", "/deals", json={"name": "Сервис", "client_id": client["id"]})
    stack.stop("telephony")
    try:
        page = stack.ok("GET", f"/deals/{deal['id']}")
        assert set(page["unavailable"]) == {"calls"}
        assert page["unavailable"]["calls"]["code"] == "timeout"
        assert page["deal"]["name"] == "Сервис" and page["client"]["id"] == client["id"]
        html = requests.get(f"{stack.url}/deals/{deal['id']}", timeout=10,
                            cookies=browser_login(stack)).text
        assert 'data-panel="calls"' in html and "Сервис" in html
        health = stack.health()
        assert health["status"] == "degraded" and health["services"]["telephony"] == "unavailable"
    finally:
        stack.start("telephony")
        stack.wait_healthy()


def browser_login(stack: Stack) -> dict[str, str]:
    session = requests.Session()
    response = session.post(f"{stack.url}/login", data={"username": "anna",
                                                        "password": "demo-crm-2026"},
                            allow_redirects=False, timeout=10)
    assert response.status_code == 302
    return session.cookies.get_dict()


def test_remote_errors_map_to_http_statuses_with_a_json_body(stack: Stack):
    missing = stack.api("GET", "/deals/999999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad_inn = stack.api("POST", "/clients", json={"name": "X", "inn": "1234567890"})
    assert bad_inn.status_code == 422 and bad_inn.json()["error"]["field"] == "inn"
    not_json = stack.api("POST", "/deals", data="nonsense")
    assert not_json.status_code == 422 and not_json.json()["error"]["field"] == "body"
    client = make_client_with_contact(stack, "+7 905 000-00-01")
    deal = stack.ok("POST", "/deals", json={"name": "Гонка", "client_id": client["id"]})
    stack.ok("POST", f"/deals/{deal['id']}/status", json={"status": "proposal", "version": 1})
    stale = stack.api("POST", f"/deals/{deal['id']}/status",
                      json={"status": "negotiation", "version": 1})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    unauthenticated = requests.get(f"{stack.url}/api/v1/deals", timeout=5)
    assert unauthenticated.status_code == 401


def test_accountant_cannot_open_the_deals_section(stack: Stack):
    response = stack.api("GET", "/deals", user="buh")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_login_is_rate_limited_and_forms_need_the_csrf_token(stack: Stack):
    # A name nobody else signs in with: the limit is per name, and other tests share users.
    session = requests.Session()
    for _ in range(20):
        wrong = session.post(f"{stack.url}/login", data={"username": "guesser", "password": "x"},
                             timeout=5)
        assert wrong.status_code == 401
    blocked = session.post(f"{stack.url}/login",
                           data={"username": "guesser", "password": "x"}, timeout=5)
    assert blocked.status_code == 429
    cookies = browser_login(stack)
    forged = requests.post(f"{stack.url}/deals", data={"name": "X", "client_id": "1"},
                           cookies=cookies, timeout=5, allow_redirects=False)
    assert forged.status_code == 400 and "CSRF" in forged.text


def test_openapi_document_lists_every_api_route(stack: Stack):
    document = requests.get(f"{stack.url}/api/v1/openapi.json", timeout=5).json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/deals/{deal_id}" in document["paths"]
    assert "post" in document["paths"]["/api/v1/auth/token"]
    assert document["paths"]["/api/v1/auth/token"]["post"]["security"] == []


def test_each_role_lands_on_a_section_it_may_open(stack: Stack):
    for username, landing in (("buh", "/clients"), ("anna", "/deals")):
        session = requests.Session()
        response = session.post(f"{stack.url}/login", timeout=10, allow_redirects=False,
                                data={"username": username, "password": "demo-crm-2026"})
        assert response.headers["Location"].endswith(landing), username
        home = session.get(f"{stack.url}/", timeout=10)
        assert home.status_code == 200 and home.url.endswith(landing), username


def test_the_admin_health_page_shows_every_service_and_the_queues(stack):
    """delivery_stats and recording_backlog have their caller: the admin health page."""

    from tests.support.stack import web_session

    session: requests.Session = web_session(stack, "admin")
    page = session.get(f"{stack.url}/admin/health", timeout=10)
    assert page.status_code == 200
    for service in ("deals", "clients", "notifications", "telephony"):
        assert f'data-service="{service}"' in page.text
    assert 'id="admin-health-deliveries"' in page.text
    assert 'id="admin-health-recordings"' in page.text
    assert session.get(f"{stack.url}/admin/health", timeout=10).text.count("не отвечает") == 0
