"""Documents through the running CRM: from a deal with a calculation an invoice is
generated, its link opens without a session, the PDF's text carries every requisite, the
client pays it online through the provider stand-in, the receipt reaches the feed and the
manager is told by e-mail."""
from __future__ import annotations

import subprocess
from datetime import date
from typing import Any

import pytest
import requests

from tests.support.notify_standins import CommsStack, comms_stack
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

COMPANY = {"name": "ООО «Вектор»", "inn": "7707083893", "kpp": "770701001",
           "ogrn": "1027700132195", "address": "Москва, ул. Тверская, 1",
           "bank_name": "ПАО Сбербанк", "bik": "044525225",
           "settlement_account": "40702810938000000001",
           "correspondent_account": "30101810400000000225", "director": "Иванов И. И.",
           "vat_rate": "20"}
LINES = [{"kind": "service", "name": "Внедрение CRM", "quantity": "1",
          "unit_price": "100000.00"},
         {"kind": "goods", "name": "Лицензия на год", "quantity": "2",
          "unit_price": "10000.25"}]


@pytest.fixture(scope="module")
def comms(pytestconfig: Any) -> CommsStack:
    return comms_stack(pytestconfig)


def deal_with_calculation(stack: Stack, name: str) -> dict[str, Any]:
    stack.ok("PUT", "/documents/company", user="admin", json=COMPANY)
    client = stack.ok("POST", "/clients", json={
        "kind": "legal", "name": "Ромашка", "inn": "7728168971", "kpp": "772801001",
        "requisites": {"name": "ООО «Ромашка»", "legal_address": "Москва, ул. Ленина, 5"},
        "contacts": [{"name": "Пётр Сидоров", "emails": ["petr@romashka.test"]}]})
    deal = stack.ok("POST", "/deals", json={"name": name, "client_id": client["id"]})
    stack.ok("PUT", f"/deals/{deal['id']}/calculation", json={"lines": LINES})
    return deal


def template(stack: Stack, kind: str) -> int:
    return next(t["id"] for t in stack.ok("GET", "/documents/templates") if t["kind"] == kind)


def pdf_text(content: bytes) -> str:
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=content, check=True,
                          capture_output=True).stdout.decode()


def test_an_invoice_link_shows_the_requisites_and_is_paid_online(comms: CommsStack):
    stack = comms.stack
    stack.ok("PUT", "/notifications/profile", json={"email": "anna@crm.test"})
    deal = deal_with_calculation(stack, "Внедрение CRM (счёт)")
    [payment] = stack.ok("POST", f"/deals/{deal['id']}/calculation/plan",
                         json={"parts": 1, "first_due_date": str(date.today())})
    invoice = stack.ok("POST", f"/deals/{deal['id']}/documents",
                       json={"template_id": template(stack, "invoice")})
    assert invoice["planned_payment_id"] == payment["id"]

    anonymous = requests.Session()
    page = anonymous.get(invoice["link"], timeout=15)
    assert page.status_code == 200 and invoice["title"] in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in page.headers["X-Robots-Tag"] and "Оплатить онлайн" in page.text
    assert "http://" not in page.text.replace(stack.url, "") \
        and "https://" not in page.text  # nothing from other sites
    pdf = anonymous.get(invoice["link"] + "/pdf", timeout=15)
    assert pdf.headers["Content-Type"] == "application/pdf"
    text = pdf_text(pdf.content)
    for expected in ("ИНН 7707083893", "КПП 770701001", "044525225", "40702810938000000001",
                     "30101810400000000225", "7728168971", "772801001", "Внедрение CRM",
                     "Лицензия на год", "120 000,50", "20 000,08",
                     "Сто двадцать тысяч рублей 50 копеек"):
        assert expected in text, expected
    assert anonymous.get(invoice["link"][:-2] + "xx", timeout=10).status_code == 404

    paying = anonymous.post(invoice["link"] + "/pay", allow_redirects=False, timeout=15)
    assert paying.status_code == 303
    provider_id = paying.headers["Location"].rsplit("/", 1)[1]
    assert paying.headers["Location"].startswith(comms.provider.url)
    comms.provider.succeed(provider_id)
    hook = f"{stack.url}/api/v1/payments/webhooks/yookassa"
    assert requests.post(hook, json=comms.provider.notification(provider_id),
                         timeout=10).json()["status"] == "recorded"
    assert requests.post(hook, json=comms.provider.notification(provider_id),
                         timeout=10).json()["status"] == "duplicate"

    wait_for(lambda: [d for d in stack.ok("GET", f"/deals/{deal['id']}/documents")["documents"]
                      if d["id"] == invoice["id"] and d["status"] == "paid"],
             timeout=20, message="the invoice to be paid")
    wait_for(lambda: {"receipt", "document"} <= {
        e["kind"] for e in stack.ok("GET", f"/deals/{deal['id']}")["feed"]},
        message="the receipt and the document's lines in the deal's feed")
    wait_for(lambda: [m for m in comms.smtp.messages if m["To"] == "anna@crm.test"
                      and "Поступила оплата" in str(m["Subject"])],
             timeout=20, message="the manager's e-mail about the payment")
    wait_for(lambda: [m for m in comms.smtp.messages if m["To"] == "anna@crm.test"
                      and "Клиент открыл документ" in str(m["Subject"])],
             timeout=20, message="the manager's e-mail about the view")
    assert "Оплатить онлайн" not in anonymous.get(invoice["link"], timeout=15).text


def test_a_revoked_link_says_whom_to_contact(comms: CommsStack):
    stack = comms.stack
    deal = deal_with_calculation(stack, "Договор (отзыв)")
    contract = stack.ok("POST", f"/deals/{deal['id']}/documents",
                        json={"template_id": template(stack, "contract")})
    session = requests.Session()
    assert session.post(f"{stack.url}/login", data={"username": "anna",
                                                     "password": "demo-crm-2026"},
                        allow_redirects=False, timeout=10).status_code == 302
    page = session.get(f"{stack.url}/deals/{deal['id']}", timeout=15).text
    assert contract["link"] in page
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    revoked = session.post(f"{stack.url}/deals/{deal['id']}/documents/{contract['id']}/revoke",
                           data={"csrf_token": csrf}, allow_redirects=False, timeout=15)
    assert revoked.status_code == 302
    closed = requests.get(contract["link"], timeout=15)
    assert closed.status_code == 200 and "Эта ссылка отозвана" in closed.text
    assert "Анна" in closed.text  # the manager to contact
    assert "Договор №" not in closed.text.split("<h1>", 1)[1].split("</h1>", 1)[1]


def _login(stack: Stack, username: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    assert session.post(f"{stack.url}/login", data={"username": username,
                                                     "password": "demo-crm-2026"},
                        allow_redirects=False, timeout=10).status_code == 302
    page = session.get(f"{stack.url}/documents/templates/new", timeout=15).text \
        if username == "admin" else session.get(f"{stack.url}/", timeout=15).text
    return session, page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def _docx(*paragraphs: str) -> bytes:
    import io

    from docx import Document as Docx

    document = Docx()
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _docx_text(content: bytes) -> str:
    import io

    from docx import Document as Docx

    return "\n".join(p.text for p in Docx(io.BytesIO(content)).paragraphs)


def test_a_docx_template_uploaded_on_the_admin_page_makes_a_docx_for_deal_and_link(
        comms: CommsStack):
    from services.documents.docx_templates import soffice

    stack = comms.stack
    admin, csrf = _login(stack, "admin")
    form = {"csrf_token": csrf, "name": "Договор Word", "kind": "contract",
            "format": "docx", "active": "on"}
    broken = admin.post(f"{stack.url}/documents/templates/new", data=form, files={
        "docx": ("t.docx", _docx("Договор", "{{ client.secret }}"))}, timeout=15)
    assert broken.status_code == 422  # refused, the page again with its problems
    assert "абзац 2: у «client» нет поля «secret»" in broken.text
    saved = admin.post(f"{stack.url}/documents/templates/new", data=form, files={
        "docx": ("t.docx", _docx("Договор № {{ document.number }}",
                                 "Заказчик ИНН {{ client.inn }}",
                                 "Итого: {{ totals.total_in_words }}"))},
        allow_redirects=False, timeout=15)
    assert saved.status_code == 302
    [tpl] = [t for t in stack.ok("GET", "/documents/templates") if t["name"] == "Договор Word"]
    assert tpl["format"] == "docx"

    deal = deal_with_calculation(stack, "Договор (Word)")
    made = stack.ok("POST", f"/deals/{deal['id']}/documents", json={"template_id": tpl["id"]})
    manager, _ = _login(stack, "anna")
    page = manager.get(f"{stack.url}/deals/{deal['id']}", timeout=15).text
    docx_url = f"/deals/{deal['id']}/documents/{made['id']}/docx"
    assert docx_url in page
    own = manager.get(stack.url + docx_url, timeout=15)
    assert own.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    text = _docx_text(own.content)
    assert "Заказчик ИНН 7728168971" in text and "Сто двадцать тысяч рублей 50 копеек" in text

    anonymous = requests.Session()
    link_page = anonymous.get(made["link"], timeout=15).text
    assert "Скачать DOCX" in link_page
    assert "7728168971" in anonymous.get(made["link"] + "/document", timeout=15).text
    assert ("PDF-версии нет" in link_page) is (soffice() is None)
    assert _docx_text(anonymous.get(made["link"] + "/docx", timeout=15).content) == text
