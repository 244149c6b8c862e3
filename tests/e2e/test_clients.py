"""Clients through the gateway's HTTP with every service running: the JSON API under
/api/v1/clients, the pages, import/export files and the remembered list columns."""
from __future__ import annotations

import csv
import io
import random

import pytest
import requests

from tests.support.stack import PASSWORD, Stack
from tests.unit.clients.vectors import make_inn10

pytestmark = pytest.mark.e2e


def fresh_inn() -> str:
    return make_inn10(f"77{random.randrange(10**7):07d}")


def fresh_mobile() -> str:
    return f"+7916{random.randrange(10**7):07d}"


def signed_in(stack: Stack, username: str = "anna") -> tuple[requests.Session, str]:
    """A browser-like session and its CSRF token (read from a page's meta or form)."""
    session = requests.Session()
    response = session.post(f"{stack.url}/login", timeout=10, allow_redirects=False,
                            data={"username": username, "password": PASSWORD})
    assert response.status_code == 302
    page = session.get(f"{stack.url}/clients", timeout=10).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return session, token


def test_client_lifecycle_through_the_api(stack: Stack):
    inn, phone = fresh_inn(), fresh_mobile()
    digits = phone[2:]
    created = stack.ok("POST", "/clients", json={
        "name": "ООО «API»", "inn": inn, "city": "Казань",
        "contacts": [{"name": "Мария", "phones": [f"8 ({digits[:3]}) {digits[3:]}"]}]})
    assert created["contacts"][0]["phones"] == [phone] and created["duplicates"] == []
    assert created["manager_id"] == stack.ok("GET", "/me")["id"]

    found = stack.ok("GET", "/clients", params={"phone": f"8{digits}"})
    assert [c["id"] for c in found["items"]] == [created["id"]]
    assert stack.ok("GET", "/contacts/by-phone", params={"phone": f"+7 {digits}"})[
        "client_id"] == created["id"]

    changed = stack.ok("PATCH", f"/clients/{created['id']}",
                       json={"website": "api.example.ru", "version": created["version"]})
    stale = stack.api("PATCH", f"/clients/{created['id']}",
                      json={"website": "x.ru", "version": created["version"]})
    assert stale.status_code == 409
    bad = stack.api("PATCH", f"/clients/{created['id']}", json={"kpp": "12"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "kpp"
    assert changed["website"] == "https://api.example.ru"
    history = stack.ok("GET", f"/clients/{created['id']}/history")
    assert [(h["field"], h["source"]) for h in history][:1] == [("website", "api")]

    stack.ok("POST", f"/clients/{created['id']}/comments", json={"text": "Позвонить в среду"})
    assert [c["text"] for c in stack.ok("GET", f"/clients/{created['id']}/comments")] == [
        "Позвонить в среду"]
    twin = stack.ok("POST", "/clients", json={"name": "API дубль", "inn": inn})
    assert [d["id"] for d in twin["duplicates"]] == [created["id"]]
    survivor = stack.ok("POST", f"/clients/{created['id']}/merge", json={"merged_id": twin["id"]})
    assert survivor["id"] == created["id"]
    assert stack.ok("GET", f"/clients/{twin['id']}")["merged_into"] == created["id"]
    missing = stack.api("POST", f"/clients/{created['id']}/merge", json={})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "merged_id"


def test_import_with_a_bad_row_and_export_of_the_filtered_list(stack: Stack):
    city = f"Импортград{random.randrange(10**6)}"
    good, other = fresh_inn(), fresh_inn()
    content = ("Название;ИНН;Контакт;Телефон\n"
               f"ООО «Файл-1»;{good};Ирина;{fresh_mobile()}\n"
               f"ООО «Файл-2»;{other};Павел;8 916 000\n").encode()
    preview = stack.ok("POST", "/clients/imports",
                       files={"file": ("clients.csv", content, "text/csv")})
    assert preview["rows_ok"] == 1
    assert [(e["row_number"], e["field"]) for e in preview["errors"]] == [(3, "phone")]
    result = stack.ok("POST", f"/clients/imports/{preview['import_id']}/run")
    assert (result["created"], result["skipped_rows"]) == (1, [3])
    assert stack.ok("GET", "/clients", params={"inn": other})["total"] == 0
    [imported] = stack.ok("GET", "/clients", params={"inn": good})["items"]
    again = stack.api("POST", f"/clients/imports/{preview['import_id']}/run")
    assert again.status_code == 409

    stack.ok("PATCH", f"/clients/{imported['id']}", json={"city": city})
    exported = stack.api("GET", "/clients/export", params={"city": city, "format": "csv"})
    assert exported.status_code == 200
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Название" and [r[0] for r in rows[1:]] == ["ООО «Файл-1»"]
    xlsx = stack.api("GET", "/clients/export", params={"city": city, "format": "xlsx"})
    assert xlsx.content.startswith(b"PK")


def test_the_chosen_list_columns_are_remembered_for_the_user(stack: Stack):
    chosen = ["inn", "name", "email", "created_at"]
    assert stack.ok("PUT", "/clients/columns", json={"columns": chosen}, user="head") == {
        "columns": chosen}
    assert stack.ok("GET", "/clients/columns", user="head") == {"columns": chosen}
    assert stack.ok("GET", "/clients/columns", user="admin")["columns"][0] == "name"
    refused = stack.api("PUT", "/clients/columns", json={"columns": ["inn"]}, user="head")
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "columns"
    session, _ = signed_in(stack, "head")
    page = session.get(f"{stack.url}/clients", timeout=10).text
    header = page.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert [part.split('"', 1)[0] for part in header.split('data-column="')[1:]] == chosen


def test_client_page_shows_its_panels_and_history_and_survives_deals_being_down(stack: Stack):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Страница»", "inn": fresh_inn()})
    stack.ok("PATCH", f"/clients/{client['id']}", json={"address": "Самара"})
    session, token = signed_in(stack)
    posted = session.post(f"{stack.url}/clients/{client['id']}/comments", timeout=10,
                          data={"csrf_token": token, "text": "Первый разговор"})
    assert posted.status_code == 200 and "Первый разговор" in posted.text
    page = session.get(f"{stack.url}/clients/{client['id']}", timeout=10).text
    for panel in ("panel-contacts", "panel-comments", "panel-deals", "panel-reminders"):
        assert f'id="{panel}"' in page
    assert "panel-unavailable" not in page
    history = session.get(f"{stack.url}/clients/{client['id']}?tab=history", timeout=10).text
    assert 'data-field="address"' in history and "Самара" in history
    bad = session.post(f"{stack.url}/clients/{client['id']}/requisites", timeout=10,
                       data={"csrf_token": token, "req.inn": "7707083894"})
    assert "В ИНН 7707083894 неверная контрольная цифра." in bad.text

    stack.stop("deals")
    try:
        degraded = session.get(f"{stack.url}/clients/{client['id']}", timeout=10)
        assert degraded.status_code == 200 and "ООО «Страница»" in degraded.text
        assert 'data-panel="deals"' in degraded.text
        assert 'data-panel="reminders"' in degraded.text
    finally:
        stack.start("deals")
        stack.wait_healthy()


def test_openapi_document_describes_the_client_routes(stack: Stack):
    paths = requests.get(f"{stack.url}/api/v1/openapi.json", timeout=5).json()["paths"]
    for path, method in [("/api/v1/clients", "get"), ("/api/v1/clients", "post"),
                         ("/api/v1/clients/{client_id}", "patch"),
                         ("/api/v1/clients/{client_id}/merge", "post"),
                         ("/api/v1/clients/imports", "post"),
                         ("/api/v1/clients/export", "get"),
                         ("/api/v1/clients/columns", "put"),
                         ("/api/v1/contacts/{contact_id}", "patch")]:
        assert method in paths[path], (path, method)
    document = requests.get(f"{stack.url}/api/v1/openapi.json", timeout=5).json()
    create = paths["/api/v1/clients"]["post"]["requestBody"]["content"]["application/json"]
    name = create["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "contacts" in document["components"]["schemas"][name]["properties"]


def test_import_page_previews_the_file_then_imports_the_good_rows(stack: Stack):
    session, token = signed_in(stack)
    inn = fresh_inn()
    content = ("Название;ИНН;Контакт;Телефон\n"
               f"ООО «Через страницу»;{inn};Нина;{fresh_mobile()}\n"
               ";7707083894;;\n").encode()
    preview = session.post(f"{stack.url}/clients/import", timeout=10,
                           data={"csrf_token": token},
                           files={"file": ("clients.csv", content, "text/csv")})
    assert 'id="import-preview"' in preview.text and 'id="import-errors"' in preview.text
    assert stack.ok("GET", "/clients", params={"inn": inn})["total"] == 0
    action = preview.text.split('action="/clients/import/', 1)[1].split('"', 1)[0]
    done = session.post(f"{stack.url}/clients/import/{action}", timeout=10,
                        data={"csrf_token": token})
    assert 'id="import-result"' in done.text
    assert stack.ok("GET", "/clients", params={"inn": inn})["total"] == 1
