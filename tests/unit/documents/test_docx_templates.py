"""The DOCX template checker on files built here with python-docx, and its render."""
from __future__ import annotations

import io
import zipfile
from decimal import Decimal

import pytest
from docx import Document

from services.documents import docx_templates
from services.kit.errors import ValidationError


def build(*paragraphs: list[str] | str, table: list[list[str]] | None = None) -> bytes:
    """A DOCX whose paragraphs are given as lists of runs (Word's pieces of text)."""
    document = Document()
    for runs in paragraphs:
        paragraph = document.add_paragraph()
        for text in ([runs] if isinstance(runs, str) else runs):
            paragraph.add_run(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, text in enumerate(row):
                grid.cell(r, c).text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def keys(blob: bytes) -> list[tuple[int, str]]:
    return [(p["line"], p["key"]) for p in docx_templates.check(blob)]


def test_a_good_template_has_no_problems_even_with_a_tag_split_inside_by_word():
    blob = build("Договор № {{ document.number }} от {{ today }}",
                 ["ИНН: {{ client.", "inn", " }}"],          # split inside: docxtpl joins it
                 "{%p for line in lines %}",
                 "{{ line.n }}. {{ line.name }} — {{ line.amount|money }}",
                 "{%p endfor %}",
                 "Итого: {{ totals.total_in_words }}")
    assert docx_templates.check(blob) == []


def test_an_opening_split_across_runs_is_reported_with_its_paragraph():
    blob = build("Договор", ["Клиент: {", "{ client.inn }}"])
    problems = docx_templates.check(blob)
    assert [(p["line"], p["key"]) for p in problems] == [(2, "template.docx_split_tag")]
    assert problems[0]["message"].startswith("абзац 2: Word разбил начало тега «{{ client.inn }}»")


def test_a_tag_split_across_paragraphs_is_not_closed_in_the_first():
    blob = build("Договор", "Покупатель", "ИНН {{ client.inn", "}}")
    problems = docx_templates.check(blob)
    assert problems[0]["message"] == "абзац 3: тег «{{ client.inn» не закрыт"
    assert (problems[0]["key"], problems[0]["line"]) == ("template.docx_unclosed_tag", 3)
    assert (4, "template.docx_unopened_tag") in keys(blob)


def test_an_unknown_placeholder_and_field_are_reported_with_their_paragraph():
    blob = build("Здравствуйте", "{{ secret_key }}", "{{ client.password }}")
    assert keys(blob) == [(2, "template.docx_unknown_placeholder"),
                          (3, "template.docx_unknown_field")]
    with pytest.raises(ValidationError) as err:
        docx_templates.ensure_valid(blob)
    assert err.value.details["field"] == "file"
    assert err.value.details["key"] == "template.docx_unknown_placeholder"
    assert err.value.details["params"]["line"] == 2
    assert err.value.details["params"]["placeholder"] == "secret_key"
    assert "абзац 2: неизвестный плейсхолдер «secret_key»" in str(err.value)


def test_placeholders_in_table_cells_are_checked_too():
    blob = build("Счёт", table=[["ИНН", "{{ client.inn }}"], ["Банк", "{{ bank.name }}"]])
    assert keys(blob) == [(5, "template.docx_unknown_placeholder")]


@pytest.mark.parametrize(("blob", "key"), [
    (b"", "docx.required"),
    (b"%PDF-1.7 not a docx", "docx.not_docx"),
    (b"PK\x03\x04 truncated zip", "docx.broken"),
    (b"PK\x03\x04" + b"0" * (docx_templates.MAX_BYTES + 1), "docx.too_large"),
])
def test_an_upload_that_is_no_docx_is_refused_before_it_is_read(blob, key):
    with pytest.raises(ValidationError) as err:
        docx_templates.check(blob)
    assert (err.value.details["field"], err.value.details["key"]) == ("file", key)


def test_a_zip_without_word_document_xml_is_no_docx():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValidationError) as err:
        docx_templates.check(out.getvalue())
    assert err.value.details["key"] == "docx.not_docx"


def read_text(blob: bytes) -> str:
    return "\n".join(p.text for p in Document(io.BytesIO(blob)).paragraphs)


def test_render_fills_the_placeholders_escaped_for_xml():
    blob = build(["ИНН: {{ client.", "inn }}"], "{{ client.name }}", "{{ deal.amount|money }}")
    out = docx_templates.render_docx(blob, {"client": {"inn": "7707083893",
                                                       "name": 'ООО "Рога & <Копыта>"'},
                                            "deal": {"amount": Decimal("120000.50")}})
    assert read_text(out) == 'ИНН: 7707083893\nООО "Рога & <Копыта>"\n120\xa0000,50'


def test_render_runs_in_the_sandbox():
    blob = build("{{ client.__class__.__mro__ }}")
    with pytest.raises(ValidationError) as err:
        docx_templates.render_docx(blob, {"client": {"inn": "1"}})
    assert err.value.details["key"] in {"template.docx_forbidden", "template.docx_undefined"}


def test_a_missing_value_names_the_placeholder():
    with pytest.raises(ValidationError) as err:
        docx_templates.render_docx(build("{{ contact.name }}"), {"contact": {}})
    assert err.value.details["params"]["placeholder"] == "name"


def test_without_libreoffice_there_is_no_pdf(monkeypatch):
    monkeypatch.setenv("SOFFICE", "no-such-soffice-here")
    assert docx_templates.to_pdf(build("x")) is None
