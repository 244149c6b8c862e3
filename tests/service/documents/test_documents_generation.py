"""Generating documents from templates with the deal's real data; numbering under
concurrency; a template that cannot render."""
from __future__ import annotations

import base64
import subprocess

import eventlet
import pytest
from sqlalchemy import text

from gateway.rpc import RpcClient
from services.kit.errors import ValidationError
from tests.service.documents.conftest import MANAGER, template_id
from tests.support.infra import wait_until


def pdf_text(b64: str, tmp_path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(base64.b64decode(b64))
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def test_an_invoice_carries_both_parties_requisites_lines_and_total_in_words(
        deal, rpc, spy, tmp_path):
    events = spy("documents", "document_generated")
    invoice = rpc.call("documents", "generate_document", deal["id"],
                       template_id(rpc, "invoice"), MANAGER)

    assert invoice["number"] == 1 and invoice["title"].startswith("Счёт на оплату № 1 от ")
    assert invoice["amount"] == "120000.50" and invoice["status"] == "new"
    assert len(invoice["token"]) >= 32 and invoice["link_state"] == "active"
    body = pdf_text(rpc.call("documents", "document_pdf", invoice["id"])["content_b64"],
                    tmp_path)
    for expected in ("ИНН 7707083893", "КПП 770701001", "044525225", "40702810938000000001",
                     "30101810400000000225", "ООО «Ромашка»", "7728168971", "772801001",
                     "Внедрение CRM", "Лицензия", "120 000,50", "20 000,08",
                     "Сто двадцать тысяч рублей 50 копеек"):
        assert expected in body, expected
    [event] = events.wait_for("document_generated")
    assert event["data"]["deal_id"] == deal["id"] and "token" not in event["data"]
    wait_until(lambda: any(e["kind"] == "document" for e in
                           rpc.call("deals", "deal_page", deal["id"])["feed"]))


def test_fifty_concurrent_generations_take_fifty_numbers_without_a_gap(deal, rpc, amqp_uri,
                                                                       session_of):
    template = template_id(rpc, "act")
    clients = [RpcClient(amqp_uri, timeout=300, name=f"c{i}") for i in range(5)]
    try:
        pool = eventlet.GreenPool(50)
        made = list(pool.imap(lambda i: clients[i % 5].call(
            "documents", "generate_document", deal["id"], template, MANAGER), range(50)))
    finally:
        for client in clients:
            client.close()
    assert sorted(d["number"] for d in made) == list(range(1, 51))
    with session_of("documents") as session:
        assert session.execute(text("SELECT count(*), count(DISTINCT number) FROM documents "
                                    "WHERE kind = 'act' AND length(pdf) > 1000")).one() == (50, 50)
        assert session.execute(text("SELECT last FROM counters WHERE kind = 'act'")).scalar() == 50


def test_a_template_that_fails_to_render_takes_no_number(deal, rpc, session_of):
    # the checker lets a known field through; the data for it is missing at render time
    saved = rpc.call("documents", "save_template", {
        "kind": "contract", "name": "Сломанный",
        "body": "Договор\n{% for line in lines %}{{ line.name.missing }}{% endfor %}"},
        MANAGER)
    with pytest.raises(ValidationError) as caught:
        rpc.call("documents", "generate_document", deal["id"], saved["id"], MANAGER)
    assert caught.value.details["field"] == "body"
    assert str(caught.value.details["params"]["line"]) == "2"
    good = rpc.call("documents", "generate_document", deal["id"],
                    template_id(rpc, "contract"), MANAGER)
    assert good["number"] == 1
    with session_of("documents") as session:
        assert session.execute(text("SELECT count(*) FROM documents")).scalar() == 1


def test_a_template_with_unknown_placeholders_is_not_saved(stack, rpc):
    with pytest.raises(ValidationError) as caught:
        rpc.call("documents", "save_template",
                 {"kind": "invoice", "name": "X", "body": "ok\n{{ client.passport }}"}, 1)
    assert str(caught.value.details["params"]["line"]) == "2"
    assert caught.value.details["params"]["placeholder"] == "client.passport"
    assert [t["name"] for t in rpc.call("documents", "list_templates", "invoice")] == [
        "Счёт на оплату"]


def test_company_requisites_are_checked_field_by_field(stack, rpc):
    with pytest.raises(ValidationError) as caught:
        rpc.call("documents", "save_company", {"bik": "12345"}, 1)
    assert caught.value.details["field"] == "bik"

