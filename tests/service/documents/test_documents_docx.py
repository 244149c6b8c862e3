"""DOCX templates: an upload checked before it is saved, a document rendered to DOCX with
the deal's real data, downloadable by the manager and through the client link."""
from __future__ import annotations

import base64
import io
import subprocess

import pytest
from docx import Document as Docx
from sqlalchemy import text

from services.documents import docx_templates
from services.kit.errors import NotFound, ValidationError
from tests.service.documents.conftest import MANAGER


def docx_b64(*paragraphs: list[str] | str) -> str:
    document = Docx()
    for runs in paragraphs:
        paragraph = document.add_paragraph()
        for piece in ([runs] if isinstance(runs, str) else runs):
            paragraph.add_run(piece)
    out = io.BytesIO()
    document.save(out)
    return base64.b64encode(out.getvalue()).decode()


def read_text(b64: str) -> str:
    return "\n".join(p.text for p in Docx(io.BytesIO(base64.b64decode(b64))).paragraphs)


def test_a_docx_template_renders_a_docx_with_the_clients_inn_and_amount_in_words(
        deal, rpc, session_of):
    saved = rpc.call("documents", "save_template", {
        "kind": "contract", "name": "Договор (Word)", "format": "docx",
        "docx_b64": docx_b64("Договор № {{ document.number }} от {{ today }}",
                             ["Заказчик: {{ client.name }}, ИНН {{ client.", "inn }}"],
                             "Сумма: {{ totals.total|money }} ({{ totals.total_in_words }})")},
        MANAGER)
    assert saved["format"] == "docx" and "{{ client.inn }}" in saved["body"]

    made = rpc.call("documents", "generate_document", deal["id"], saved["id"], MANAGER)
    assert made["number"] == 1 and made["has_docx"] is True
    assert made["has_pdf"] is (docx_templates.soffice() is not None)
    body = read_text(rpc.call("documents", "document_docx", made["id"])["content_b64"])
    assert "ООО «Ромашка», ИНН 7728168971" in body
    assert "Сто двадцать тысяч рублей 50 копеек" in body
    assert "Договор № 1 от " in body
    # the client gets the same file through the link; the page shows its text
    assert read_text(rpc.call("documents", "link_docx", made["token"])["content_b64"]) == body
    page = rpc.call("documents", "peek_link", made["token"])
    assert "7728168971" in page["html"] and page["has_docx"] is True
    if made["has_pdf"]:  # LibreOffice is installed: the same text in the PDF
        pdf = base64.b64decode(rpc.call("documents", "document_pdf", made["id"])["content_b64"])
        pdf_text = subprocess.run(["pdftotext", "-", "-"], input=pdf, check=True,
                                  capture_output=True).stdout.decode()
        assert "ИНН 7728168971" in pdf_text and "Сто двадцать тысяч рублей" in pdf_text
    else:
        with pytest.raises(NotFound):
            rpc.call("documents", "document_pdf", made["id"])
    with session_of("documents") as session:
        assert session.execute(text("SELECT count(*) FROM documents WHERE length(docx) > 1000"
                                    )).scalar() == 1


def test_a_docx_template_with_a_broken_tag_is_refused_before_it_is_saved(
        deal, rpc, session_of):
    with pytest.raises(ValidationError) as caught:
        rpc.call("documents", "save_template", {
            "kind": "contract", "name": "Сломанный (Word)", "format": "docx",
            "docx_b64": docx_b64("Договор", "Покупатель", "ИНН {{ client.inn", "}}")},
            MANAGER)
    details = caught.value.details
    assert (details["field"], details["key"]) == ("file", "template.docx_unclosed_tag")
    assert details["params"]["line"] == 3
    assert "абзац 3: тег «{{ client.inn» не закрыт" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        rpc.call("documents", "save_template", {
            "kind": "contract", "name": "Не Word", "format": "docx",
            "docx_b64": base64.b64encode(b"%PDF-1.7").decode()}, MANAGER)
    assert caught.value.details["key"] == "docx.not_docx"
    with session_of("documents") as session:
        assert session.execute(text("SELECT count(*) FROM templates WHERE format = 'docx'"
                                    )).scalar() == 0
