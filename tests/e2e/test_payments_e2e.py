"""Payments through the whole stack over HTTP: a bank statement uploaded by the accountant
is matched to a deal's planned payment, the deal page shows the receipt, deals follow the
budget and the manager is notified; refused files, the forecast export, the webhook."""
from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from openpyxl import load_workbook

from services.payments.feeds import Transaction, write_1c_statement
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

OUR_ACCOUNT = "40702810400000000077"
SHARED_FEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "feeds"


def statement(*txs: Transaction) -> bytes:
    buffer = io.BytesIO()
    write_1c_statement(buffer, txs)
    return buffer.getvalue()


def incoming(number: str, amount: str, inn: str, purpose: str) -> Transaction:
    return Transaction(own_account=OUR_ACCOUNT, date=date.today(), number=number,
                       amount=Decimal(amount), direction="credit", payer_name="ООО Плательщик",
                       payer_inn=inn, payer_account="40702810500000000001", payee_name="Мы",
                       payee_inn="7700000000", purpose=purpose)


def ensure_our_account(stack: Stack) -> None:
    response = stack.api("POST", "/payments/accounts", user="buh",
                         json={"account": OUR_ACCOUNT, "name": "Расчётный"})
    assert response.status_code in (201, 409), response.text


def upload(stack: Stack, content: bytes, filename: str) -> dict[str, Any]:
    response = stack.api("POST", "/payments/imports", user="buh",
                         files={"file": (filename, content, "text/plain")})
    assert response.status_code == 202, response.text
    job = response.json()
    return wait_for(lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(
        stack.ok("GET", f"/payments/imports/{job['id']}", user="buh")), timeout=30,
        message=f"import {job['id']}")


def deal_with_payment(stack: Stack, inn: str, amount: str, invoice: str) -> tuple[dict, dict]:
    client = stack.ok("POST", "/clients", json={"name": f"ООО «Плательщик {invoice}»",
                                                "inn": inn})
    deal = stack.ok("POST", "/deals", json={"name": f"Поставка {invoice}",
                                            "client_id": client["id"]})
    payment = stack.ok("POST", f"/deals/{deal['id']}/payments",
                       json={"amount": amount, "due_date": str(date.today()),
                             "invoice_number": invoice})
    # the matcher learns the client's INN from the clients' and deals' events
    wait_for(lambda: (stack.ok("GET", f"/deals/{deal['id']}/payments")["payer"] or {})
             .get("inn") == inn, message="payments to learn the deal's client INN")
    return deal, payment


def test_statement_upload_pays_the_deal_and_notifies_its_manager(stack: Stack):
    ensure_our_account(stack)
    deal, payment = deal_with_payment(stack, "7707083893", "150000.00", "E2E-77")
    file = statement(incoming("501", "150000.00", "7707083893", "Оплата по счету № E2E-77"),
                     incoming("502", "42.00", "", "Возврат депозита"))
    job = upload(stack, file, "vypiska.txt")
    assert job["status"] == "done", job
    assert (job["result"]["matched"], job["result"]["unmatched"]) == (1, 1)

    page = stack.ok("GET", f"/deals/{deal['id']}")
    assert page["payments"]["paid"] == "150000.00"
    [receipt] = page["payments"]["receipts"]
    assert (receipt["source"], receipt["planned_payment_id"]) == ("bank", payment["id"])
    assert any(e["kind"] == "receipt" for e in page["feed"])
    # deals follows the budget from budget_changed; anna (the manager) is notified
    wait_for(lambda: stack.ok("GET", f"/deals/{deal['id']}")["deal"].get("paid") == "150000.00",
             message="deals to follow the paid amount")
    notices = wait_for(lambda: [n for n in stack.ok("GET", "/notifications")["items"]
                                if n["kind"] == "payment_received"
                                and n.get("deal_id") == deal["id"]],
                       message="the manager's notification")
    assert "150 000,00" in notices[0]["title"]
    html = requests.get(f"{stack.url}/deals/{deal['id']}", cookies=login(stack, "anna"),
                        timeout=10).text
    assert 'id="panel-payments"' in html and "150\u202f000,00" in html

    again = upload(stack, file, "vypiska-again.txt")
    assert (again["result"]["new"], again["result"]["duplicates"]) == (0, 2)
    queue = stack.ok("GET", "/payments/review?status=unmatched", user="buh")
    [deposit] = [t for t in queue["items"] if t["number"] == "502"]
    stack.ok("POST", f"/payments/transactions/{deposit['id']}/resolve", user="buh",
             json={"action": "dismiss", "note": "возврат депозита"})


def test_files_that_cannot_be_trusted_are_refused_with_the_reason(stack: Stack):
    not_statement = stack.api("POST", "/payments/imports", user="buh",
                              files={"file": ("photo.jpg", b"\xff\xd8\xff\xe0JFIF", "image/jpeg")})
    assert not_statement.status_code == 422
    assert not_statement.json()["error"]["field"] == "file"
    assert not_statement.json()["error"]["key"] == "statement.not_statement"
    manager = stack.api("POST", "/payments/imports", user="anna",
                        files={"file": ("x.txt", b"1CClientBankExchange", "text/plain")})
    assert manager.status_code == 403
    for method, path, kwargs, status, field in [
            ("POST", "/payments/imports?filename=x.txt", {"data": b""}, 422, "file"),
            ("GET", "/payments/forecast?granularity=year", {}, 422, "granularity"),
            ("GET", "/payments/overdue-by-deal?deal_ids=1,x", {}, 422, "deal_ids"),
            ("POST", "/payments/transactions/999999/resolve", {"json": {"action": "x"}}, 422,
             "action"),
            ("POST", "/payments/transactions/999999/resolve", {"json": {"action": "dismiss"}},
             404, None),
            ("POST", "/payments/99999999/due-date", {"data": "not json"}, 422, "body")]:
        response = stack.api(method, path, user="buh", **kwargs)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"].get("field") == field, (path, response.text)
    webhook = requests.post(f"{stack.url}/api/v1/payments/webhooks/yookassa", data="<xml/>",
                            timeout=10)
    assert webhook.status_code == 422 and webhook.json()["error"]["field"] == "body"
    if not SHARED_FEEDS.is_dir():
        pytest.skip("../shared/data/feeds is absent: the real garbled camt file is not here")
    garbled = (SHARED_FEEDS / "camt053-bsp-garbled_amount.xml").read_bytes()
    job = upload(stack, garbled, "camt053-bsp-garbled_amount.xml")
    assert job["status"] == "failed"
    assert job["error_location"] == "Stmt[1]/Ntry[1]/Amt"
    assert "'12..34' is not an amount" in job["error"]
    assert (job["error_key"], job["error_params"]["value"]) == ("statement.element.amount",
                                                                "12..34")
    assert job["result"] is None


def test_forecast_as_json_and_as_a_workbook(stack: Stack):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Прогноз»", "inn": "7728168971"})
    deal = stack.ok("POST", "/deals", json={"name": "Прогноз", "client_id": client["id"]})
    stack.ok("POST", f"/deals/{deal['id']}/payments",
             json={"amount": "7000.00", "due_date": str(date.today() + timedelta(days=1))})
    data = stack.ok("GET", "/payments/forecast?granularity=month&periods=3", user="head")
    assert len(data["periods"]) == 3 and Decimal(data["expected_total"]) >= Decimal("7000")
    workbook = stack.api("GET", "/payments/forecast?granularity=month&periods=3&format=xlsx",
                         user="head")
    assert workbook.status_code == 200
    assert workbook.headers["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml")
    book = load_workbook(io.BytesIO(workbook.content))
    sheet = book.worksheets[0]
    assert sheet["A2"].value == "Период" and sheet.max_row == 2 + 3 + 3
    assert len(book.worksheets) == 2 and sheet._charts
    html = requests.get(f"{stack.url}/payments/forecast", cookies=login(stack, "head"),
                        timeout=10).text
    assert 'id="forecast-chart"' in html and "vendor/chart.min.js" in html


class ProviderStandIn:
    def __init__(self) -> None:
        self.payments: dict[str, dict[str, Any]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                found = outer.payments.get(self.path.rsplit("/", 1)[-1])
                body = json.dumps(found or {"code": "not_found"}).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider(stack: Stack) -> Iterator[ProviderStandIn]:
    running = ProviderStandIn()
    stack.stop("payments")
    stack.env["ONLINE_PAYMENTS_API_URL"] = running.url
    stack.start("payments")
    stack.wait_healthy()
    yield running
    running.close()
    stack.env.pop("ONLINE_PAYMENTS_API_URL", None)  # a later restart uses the default


def test_online_payment_webhook_marks_the_invoice_paid_once(stack: Stack, provider):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Онлайн»", "inn": "7707083893"})
    deal = stack.ok("POST", "/deals", json={"name": "Онлайн-оплата", "client_id": client["id"]})
    payment = stack.ok("POST", f"/deals/{deal['id']}/payments",
                       json={"amount": "2.00", "due_date": str(date.today())})
    provider.payments["2d1f6a9e-000f-5000-9000-1b2c3d4e5f60"] = {
        "id": "2d1f6a9e-000f-5000-9000-1b2c3d4e5f60", "status": "succeeded", "paid": True,
        "amount": {"value": "2.00", "currency": "RUB"},
        "metadata": {"payment_id": str(payment["id"])}}
    hook = {"type": "notification", "event": "payment.succeeded", "object": {
        "id": "2d1f6a9e-000f-5000-9000-1b2c3d4e5f60", "status": "succeeded",
        "amount": {"value": "2.00", "currency": "RUB"},
        "metadata": {"payment_id": str(payment["id"])}}}
    url = f"{stack.url}/api/v1/payments/webhooks/yookassa"  # public: no token
    first = requests.post(url, json=hook, timeout=10)
    assert first.status_code == 200 and first.json()["status"] == "recorded", first.text
    second = requests.post(url, json=hook, timeout=10)
    assert second.json()["status"] == "duplicate"
    forged = requests.post(url, json={**hook, "object": {**hook["object"], "id": "forged"}},
                           timeout=10)
    assert forged.status_code == 422 and forged.json()["error"]["field"] == "object.id"
    panel = stack.ok("GET", f"/deals/{deal['id']}/payments")
    assert panel["paid"] == "2.00" and [r["source"] for r in panel["receipts"]] == ["online"]
    wait_for(lambda: [n for n in stack.ok("GET", "/notifications")["items"]
                      if n["kind"] == "payment_received" and n.get("deal_id") == deal["id"]],
             message="the manager's notification of the online payment")
    document = requests.get(f"{stack.url}/api/v1/openapi.json", timeout=5).json()
    assert document["paths"]["/api/v1/payments/webhooks/yookassa"]["post"]["security"] == []


def login(stack: Stack, username: str) -> dict[str, str]:
    session = requests.Session()
    response = session.post(f"{stack.url}/login", data={"username": username,
                                                        "password": "demo-crm-2026"},
                            allow_redirects=False, timeout=10)
    assert response.status_code == 302
    return session.cookies.get_dict()
