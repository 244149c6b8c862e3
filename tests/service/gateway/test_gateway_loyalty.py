"""The catalogue, RFM and BCG through the gateway on real services: the API and the pages,
who may use them, and the client list still working when analytics is down."""
from __future__ import annotations

import io
import re

from openpyxl import load_workbook
from sqlalchemy import select

from gateway.models import WebSession
from services.analytics.service import AnalyticsService
from services.clients.service import ClientsService
from services.deals.service import DealsService
from tests.service.gateway.conftest import PASSWORD, api_token


def bearer(client, name):
    return {"Authorization": f"Bearer {api_token(client, name)}"}


def test_catalogue_api_and_pages(start_service, client, add_user, gateway_db):
    start_service(DealsService)
    add_user("root", roles=["admin"])
    add_user("anna")
    admin, anna = bearer(client, "root"), bearer(client, "anna")

    made = client.post("/api/v1/products", json={"name": "Фреза <b>", "price": "250.50",
                                                 "product_line": "Инструмент"}, headers=admin)
    assert made.status_code == 201, made.get_data(as_text=True)
    product = made.get_json()
    assert client.post("/api/v1/products", json={"name": "x", "price": "1"},
                       headers=anna).status_code == 403  # only administrators write
    found = client.get("/api/v1/products?q=фрез", headers=anna).get_json()
    assert [p["id"] for p in found] == [product["id"]]
    changed = client.patch(f"/api/v1/products/{product['id']}",
                           json={"price": "300", "version": 1}, headers=admin)
    assert changed.get_json()["price"] == "300.00" and changed.get_json()["version"] == 2
    stale = client.patch(f"/api/v1/products/{product['id']}", json={"price": "1", "version": 1},
                         headers=admin)
    assert stale.status_code == 409

    bad = "Название;Цена\nБолт;10\n;5\n".encode("cp1251")
    refused = client.post("/api/v1/products/imports", data=bad,
                          headers={**admin, "Content-Type": "text/csv",
                                   "Accept-Language": "ru"})
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["field"] == "rows.3.name" and "Строка 3" in error["message"]
    loaded = client.post("/api/v1/products/imports", data={"file": (io.BytesIO(
        "Название;Артикул;Цена\nБолт;B-1;10\n".encode()), "прайс.csv")},
        headers=admin, content_type="multipart/form-data")
    assert loaded.status_code == 201 and loaded.get_json()["created"] == 1

    client.post("/login", data={"username": "root", "password": PASSWORD})
    page = client.get("/admin/catalogue").get_data(as_text=True)
    assert "Фреза &lt;b&gt;" in page and "Фреза <b>" not in page  # escaped
    csrf = gateway_db.scalars(select(WebSession.csrf_token)).first()
    typed = client.post("/admin/catalogue", data={"csrf_token": csrf, "form_token": "f-1",
                                                  "name": "Ключ", "price": "дорого"})
    assert typed.status_code == 422
    body = typed.get_data(as_text=True)
    assert 'value="дорого"' in body and "не сумма" in body  # kept what was typed
    picked = client.get("/catalogue/pick?q=болт").get_json()
    assert [(p["name"], p["price"]) for p in picked] == [("Болт", "10.00")]


def test_bcg_is_for_heads_and_the_client_list_survives_analytics_down(
        start_service, client, add_user):
    start_service(DealsService)
    start_service(ClientsService)
    add_user("head", roles=["head"])
    add_user("anna")
    made = client.post("/api/v1/clients", json={"name": "ООО «Ромашка»", "kind": "legal"},
                       headers=bearer(client, "anna"))
    assert made.status_code == 201, made.get_data(as_text=True)
    client.post("/login", data={"username": "anna", "password": PASSWORD})
    assert client.get("/analytics/bcg").status_code == 403
    # analytics is not running: the list renders, the segment column says so
    listing = client.get("/clients")
    assert listing.status_code == 200
    assert "ООО «Ромашка»" in listing.get_data(as_text=True)
    assert "сегменты недоступны" in listing.get_data(as_text=True)
    # the segment filter is the clients service's own: no client has a segment yet
    filtered = client.get("/clients?rfm=champions")
    assert filtered.status_code == 200
    assert "ООО «Ромашка»" not in filtered.get_data(as_text=True)

    start_service(AnalyticsService)
    client.get("/logout")
    head = client.application.test_client()
    head.post("/login", data={"username": "head", "password": PASSWORD})
    page = head.get("/analytics/bcg")
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    text = page.get_data(as_text=True)
    assert "Матрица БКГ" in text and "не доля рынка" in text
    export = head.get("/analytics/bcg.xlsx")
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(export.data)).active
    assert sheet.cell(3, 1).value == "Линия или тип"
    assert re.search(r"Период", str(sheet.cell(1, 1).value))


def test_the_client_page_shows_the_group_and_linked_relations(start_service, client,
                                                              add_user, gateway_db):
    start_service(ClientsService)
    start_service(DealsService)
    add_user("anna")
    anna = bearer(client, "anna")
    head = client.post("/api/v1/clients", json={"name": "АО «Головная»", "kind": "legal"},
                       headers=anna).get_json()
    plant = client.post("/api/v1/clients", json={"name": "ООО «Завод»", "kind": "legal"},
                        headers=anna).get_json()
    client.post("/login", data={"username": "anna", "password": PASSWORD})
    csrf = gateway_db.scalars(select(WebSession.csrf_token)).first()
    made = client.post(f"/clients/{head['id']}/group",
                       data={"csrf_token": csrf, "form_token": "g-1", "new_group": "Холдинг А"})
    assert made.status_code == 302
    client.post(f"/clients/{head['id']}/relations",
                data={"csrf_token": csrf, "form_token": "g-2", "related_id": plant["id"],
                      "kind": "subsidiary"})
    page = client.get(f"/clients/{head['id']}").get_data(as_text=True)
    assert 'selected>Холдинг А</option>' in page
    assert f'href="/clients/{plant["id"]}">ООО «Завод»</a>' in page
    assert "дочерняя / подразделение" in page
    other = client.get(f"/clients/{plant['id']}").get_data(as_text=True)
    assert f'href="/clients/{head["id"]}">АО «Головная»</a>' in other and \
        "головная компания" in other
    group_id = re.search(r'group_id=(\d+)" id="group-members"', page).group(1)
    listed = client.get(f"/clients?group_id={group_id}").get_data(as_text=True)
    assert "АО «Головная»" in listed and "ООО «Завод»" not in listed
    refused = client.post(f"/clients/{head['id']}/relations",
                          data={"csrf_token": csrf, "form_token": "g-3",
                                "related_id": head["id"], "kind": "partner"})
    assert refused.status_code == 302 and "error=" in refused.headers["Location"]


def test_rfm_and_performance_pages_slice_by_a_group_of_companies(start_service, client,
                                                                 add_user, rpc):
    start_service(ClientsService)
    start_service(DealsService)
    start_service(AnalyticsService)
    add_user("root", roles=["admin"])
    group = rpc.call("clients", "save_client_group", {"name": "Холдинг <Б>"})
    client.post("/login", data={"username": "root", "password": PASSWORD})
    page = client.get(f"/admin/rfm?client_group_id={group['id']}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f'<option value="{group["id"]}" selected>Холдинг &lt;Б&gt;</option>' in text
    # no client of the group paid yet: every segment counts 0
    assert text.count('data-col="clients">0</td>') == 6
    refused = client.get("/admin/rfm?client_group_id=abc")
    assert refused.status_code == 200 and 'data-col="clients"' not in \
        refused.get_data(as_text=True)
    performance = client.get(f"/analytics/performance?client_group_id={group['id']}")
    assert performance.status_code == 200, performance.get_data(as_text=True)[:500]
    shown = performance.get_data(as_text=True)
    assert f'<option value="{group["id"]}" selected>Холдинг &lt;Б&gt;</option>' in shown
    assert 'id="performance-table"' in shown
