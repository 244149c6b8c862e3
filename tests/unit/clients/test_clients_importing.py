"""Import of client files with a row-by-row report, and export that imports back."""
from __future__ import annotations

import io
import zipfile
from typing import Any

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.clients.domain import importing
from services.clients.domain.importing import (
    RowError,
    detect_format,
    export_rows,
    group_rows,
    header_column,
    preview_import,
    sniff_delimiter,
)
from services.kit.errors import ValidationError

from .vectors import make_inn12, ogrnip_with_remainder

IP_INN = make_inn12("7707083893")
IP_OGRNIP = ogrnip_with_remainder(12)

GOOD_AND_BAD = (
    "Название;Тип;ИНН;КПП;Контакт;Должность;Телефон;Email;Адрес;Сайт\n"
    "ПАО Сбербанк;;7707083893;773601001;Иван Петров;Директор;8 916 123-45-67;"
    "ivan@sber.ru;Москва;sberbank.ru\n"
    "Ромашка;юрлицо;7707083894;;;;;;;\n"  # wrong INN check digit
    ";;;;;;;;;\n"  # blank rows are skipped, but still counted
    "Пётр Сидоров;Физлицо;;;;;+7 916 000-00-0;petr@;;\n"  # two bad cells
    "Без ИНН;;;;;;;;;\n"  # neither kind nor INN
    "ООО Бета;ЮЛ;7736207543;;;;8 495 123-45-67;;;\n"  # phone without a contact
    f"ИП Иванов;ИП;{IP_INN};773601001;;;;;;\n"  # KPP on an entrepreneur
)


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def errors_by_row(errors: list[RowError]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for error in errors:
        found.setdefault(error.row_number, set()).add(error.field)
    return found


def test_cp1251_file_with_bad_rows_gives_a_row_by_row_report() -> None:
    preview = preview_import(GOOD_AND_BAD.encode("cp1251"))
    assert [row["row_number"] for row in preview.rows_ok] == [2]
    assert errors_by_row(preview.errors) == {3: {"inn"}, 5: {"phone", "email"}, 6: {"kind"},
                                             7: {"contact_name"}, 8: {"kpp"}}
    assert all(error.message for error in preview.errors)


def test_good_row_is_split_into_client_requisites_and_contact() -> None:
    row = preview_import(GOOD_AND_BAD.encode("utf-8")).rows_ok[0]
    assert row["client"] == {"name": "ПАО Сбербанк", "kind": "legal",
                             "website": "https://sberbank.ru", "address": "Москва"}
    assert row["requisites"]["inn"] == "7707083893"
    assert row["requisites"]["kpp"] == "773601001"
    assert row["requisites"]["name"] == "ПАО Сбербанк"
    assert row["contact"] == {"name": "Иван Петров", "position": "Директор",
                              "phones": ["+79161234567"], "emails": ["ivan@sber.ru"]}


@pytest.mark.parametrize("encode", [
    lambda text: text.encode("utf-8-sig"),
    lambda text: text.encode("utf-8"),
    lambda text: text.encode("cp1251"),
    lambda text: text.replace(";", "\t").encode("utf-16"),  # Excel's "Unicode text"
    lambda text: text.replace(";", ",").encode("utf-8"),
])
def test_encodings_and_delimiters_are_recognised(encode: Any) -> None:
    text = ("Название;ИНН;Телефон;Контакт\r\n"
            "Сбербанк;7707083893;\"8 916 123-45-67\";Иван\r\n")
    preview = preview_import(encode(text))
    assert preview.errors == []
    assert preview.rows_ok[0]["contact"]["phones"] == ["+79161234567"]


def test_person_row_keeps_phone_and_email_as_own_requisites() -> None:
    data = "name,kind,phone,email\nИван Петров,person,8 916 123 45 67,IVAN@mail.ru\n"
    row = preview_import(data.encode()).rows_ok[0]
    assert row["requisites"] == {"full_name": "Иван Петров", "phone": "+79161234567",
                                 "email": "ivan@mail.ru", "address": None}
    assert row["contact"] is None


def test_entrepreneur_kind_follows_from_a_12_digit_inn() -> None:
    data = f"Название;ИНН;ОГРНИП\nИП Иванов;{IP_INN};{IP_OGRNIP}\n"
    row = preview_import(data.encode()).rows_ok[0]
    assert row["client"]["kind"] == "entrepreneur"
    assert row["requisites"]["ogrnip"] == IP_OGRNIP


def test_several_phones_in_one_cell_belong_to_one_contact() -> None:
    data = ('Название;ИНН;Контакт;Телефон\nСбербанк;7707083893;Иван;'
            '"+7 916 123-45-67, +7 495 123-45-67, доб. 5; 8 916 123 45 67"\n')
    contact = preview_import(data.encode()).rows_ok[0]["contact"]
    assert contact["phones"] == ["+79161234567", "+74951234567;ext=5"]


def test_treasury_account_row_is_imported_with_a_warning() -> None:
    data = ("ИНН;БИК;Расчетный счет;Корр. счет\n"
            "7707083893;004525988;03100643000000017300;40102810545370000003\n")
    preview = preview_import(data.encode())
    assert len(preview.rows_ok) == 1
    assert [w.field for w in preview.warnings] == ["settlement_account"]


@pytest.mark.parametrize(("header", "column"), [
    ("Название", "name"), ("name", "name"), ("ИНН", "inn"), ("inn", "inn"), ("КПП", "kpp"),
    ("Телефон", "phone"), ("phone", "phone"), ("Email", "email"), ("E-mail", "email"),
    ("Контакт", "contact_name"), ("contact_name", "contact_name"),
    ("Должность", "position"), ("position", "position"), ("Адрес", "address"),
    ("address", "address"), ("Сайт", "website"), ("website", "website"), ("Тип", "kind"),
    ("kind", "kind"), ("  инн* ", "inn"), ("Расчётный счёт", "settlement_account"),
    ("\ufeffНазвание", "name"), ("Примечание", None),
])
def test_headers_in_russian_and_english(header: str, column: str | None) -> None:
    assert header_column(header) == column


def test_unknown_columns_are_reported_not_fatal() -> None:
    data = "Название;ИНН;Примечание\nСбербанк;7707083893;VIP\n"
    preview = preview_import(data.encode())
    assert preview.ignored_columns == ["Примечание"] and len(preview.rows_ok) == 1


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, ".xls"),
    (b"PK\x03\x04 not really a zip", "damaged"),
    (b"%PDF-1.4\x00\x01\x02", "neither"),
    (b"\xff\xfe\x00", "UTF-16"),
    ("Примечание;Другое\n1;2\n".encode(), "no known column"),
    ("Телефон;phone\n1;2\n".encode(), "both mean phone"),
    (b"\x98\x98\x98", "encoding"),
    ("Название\n\"".encode() + b"x" * 200_000, "broken CSV"),  # over csv's field limit
])
def test_unusable_files_are_refused_with_a_clear_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as exc:
        preview_import(data)
    assert exc.value.field == "file"


def test_zip_that_is_not_a_workbook_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    with pytest.raises(ValidationError, match="not an Excel workbook"):
        preview_import(out.getvalue())


def test_broken_workbook_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "garbage")
        archive.writestr("xl/workbook.xml", "<not-a-workbook")
    with pytest.raises(ValidationError, match="cannot be read") as exc:
        preview_import(out.getvalue())
    assert exc.value.field == "file"


def test_limits_on_size_rows_and_unpacked_size(monkeypatch: pytest.MonkeyPatch) -> None:
    data = ("Название;ИНН\n" + "Сбербанк;7707083893\n" * 5).encode()
    monkeypatch.setattr(importing, "MAX_ROWS", 4)
    with pytest.raises(ValidationError, match="more than 4 rows"):
        preview_import(data)
    monkeypatch.setattr(importing, "MAX_FILE_BYTES", 10)
    with pytest.raises(ValidationError, match="larger than"):
        detect_format(data)
    monkeypatch.setattr(importing, "MAX_FILE_BYTES", 10 * 1024 * 1024)
    monkeypatch.setattr(importing, "MAX_UNPACKED_BYTES", 100)
    with pytest.raises(ValidationError, match="too large once unpacked"):
        preview_import(xlsx_bytes([["Название"], ["Сбербанк"]]))


def test_xlsx_with_numeric_cells_is_read_as_text() -> None:
    data = xlsx_bytes([["Название", "ИНН", "Контакт", "Телефон", "Расчетный счет", "БИК"],
                       ["Сбербанк", 7707083893, "Иван", 79161234567, None, None],
                       [None, None, None, None, None, None],
                       ["Газпром", 7736050003, None, None, 40702810300000000640.0,
                        "044525232"]])
    preview = preview_import(data)
    assert preview.rows_ok[0]["requisites"]["inn"] == "7707083893"
    assert preview.rows_ok[0]["contact"]["phones"] == ["+79161234567"]
    # A 20-digit account typed as a number has lost digits: refused, not mangled.
    assert [(e.row_number, e.field) for e in preview.errors] == [(4, "settlement_account")]


CLIENTS: list[dict[str, Any]] = [
    {"name": "ПАО Сбербанк", "kind": "legal", "inn": "7707083893", "kpp": "773601001",
     "ogrn": "1027700132195", "bik": "044525225",
     "correspondent_account": "30101810400000000225", "website": "https://sberbank.ru",
     "address": "Москва; ул. Вавилова, 19", "contact_name": "Иван Петров",
     "position": "Директор", "phone": ["+79161234567", "+74951234567;ext=12"],
     "email": ["ivan@sber.ru"]},
    {"name": "ПАО Сбербанк", "kind": "legal", "inn": "7707083893",
     "contact_name": "Мария", "phone": ["+79160000001"]},
    {"name": "ИП Иванов", "kind": "entrepreneur", "inn": IP_INN, "ogrnip": IP_OGRNIP},
    {"name": "=HYPERLINK(\"http://evil\")", "kind": "person", "phone": "+79161112233",
     "email": "-x@mail.ru"},
]
COLUMNS = list(importing.COLUMNS)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_export_imports_back_to_the_same_clients(fmt: str, lang: str) -> None:
    preview = preview_import(export_rows(CLIENTS, COLUMNS, fmt, lang))
    assert preview.errors == []
    rows = preview.rows_ok
    assert [row["client"]["name"] for row in rows] == [c["name"] for c in CLIENTS]
    assert rows[0]["requisites"]["correspondent_account"] == "30101810400000000225"
    assert rows[0]["client"]["address"] == "Москва; ул. Вавилова, 19"
    assert rows[0]["contact"]["phones"] == ["+79161234567", "+74951234567;ext=12"]
    assert rows[2]["requisites"]["ogrnip"] == IP_OGRNIP
    assert rows[3]["requisites"]["phone"] == "+79161112233"
    assert rows[3]["requisites"]["email"] == "-x@mail.ru"


def test_grouping_folds_one_clients_rows_and_contacts() -> None:
    preview = preview_import(export_rows(CLIENTS, COLUMNS, "csv"))
    groups = group_rows(preview.rows_ok)
    assert [g["row_numbers"] for g in groups] == [[2, 3], [4], [5]]
    assert [c["name"] for c in groups[0]["contacts"]] == ["Иван Петров", "Мария"]


def test_people_of_the_same_name_are_not_grouped() -> None:
    data = "Название;Тип;Телефон\nИван Петров;ФЛ;+79161234567\nИван Петров;ФЛ;+79160000001\n"
    assert len(group_rows(preview_import(data.encode()).rows_ok)) == 2


def test_csv_export_is_what_excel_in_russian_opens() -> None:
    data = export_rows(CLIENTS, ["name", "inn", "phone"], "csv")
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text.splitlines()[0] == "Название;ИНН;Телефон"
    assert "\r\n" in text
    assert "'=HYPERLINK" in text  # a formula would run when opened
    assert ";+79161112233" in text.splitlines()[4]  # a stored phone stays readable


def test_xlsx_export_stores_formula_like_text_as_text() -> None:
    data = export_rows(CLIENTS[3:], ["name"], "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet["A2"].value == CLIENTS[3]["name"]
    assert sheet["A2"].data_type == "s"


@pytest.mark.parametrize(("columns", "fmt", "lang", "field"), [
    (["name", "salary"], "csv", "ru", "columns"), ([], "csv", "ru", "columns"),
    (["name"], "pdf", "ru", "fmt"), (["name"], "csv", "de", "lang"),
])
def test_export_refuses_bad_arguments(columns: list[str], fmt: str, lang: str,
                                      field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        export_rows(CLIENTS, columns, fmt, lang)
    assert exc.value.field == field


def test_delimiter_is_sniffed_from_the_header() -> None:
    assert sniff_delimiter("a;b;c\n1,5;2;3") == ";"
    assert sniff_delimiter("a,b\n") == ","
    assert sniff_delimiter("a\tb\n") == "\t"
    assert sniff_delimiter("name\n") == ","


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=200).map(lambda s: s.encode("utf-8")))
def test_random_bytes_give_a_preview_or_a_file_error(data: bytes) -> None:
    try:
        preview = preview_import(data)
    except ValidationError as exc:
        assert exc.field == "file"
    else:
        assert isinstance(preview.rows_ok, list)


CELL_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                    max_size=15)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(CELL_TEXT, min_size=4, max_size=4), max_size=5))
def test_random_cells_under_known_headers_never_crash(cells: list[list[str]]) -> None:
    # (A NUL byte makes the whole file binary: tested above.)
    header = "Название;ИНН;Телефон;Тип\n"
    body = "".join(";".join(c.replace(";", "").replace("\n", "") for c in row) + "\n"
                   for row in cells)
    preview = preview_import((header + body).encode())
    assert all(isinstance(error, RowError) for error in preview.errors)
