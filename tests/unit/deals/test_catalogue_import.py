"""The product catalogue's rules: one product checked, price lists read from CSV and XLSX,
every bad line named, nothing returned from a broken file."""
from __future__ import annotations

import io
from decimal import Decimal

import pytest
import xlsxwriter

from services.deals import catalogue
from services.kit.errors import ValidationError


def test_a_product_is_cleaned_with_defaults():
    p = catalogue.validate_product({"name": "  Станок ЧПУ ", "price": "1 250 000,50",
                                    "vat_rate": "22%", "product_line": "Станки"})
    assert (p.name, p.price, p.vat_rate, p.unit, p.kind, p.active, p.article) == (
        "Станок ЧПУ", Decimal("1250000.50"), "22", "шт", "goods", True, "")


def test_every_wrong_field_of_a_product_at_once():
    with pytest.raises(ValidationError) as exc:
        catalogue.validate_product({"name": "", "price": "дорого", "vat_rate": "19",
                                    "kind": "аренда", "active": "может быть"})
    assert {(e["field"], e["key"]) for e in exc.value.errors} == {
        ("name", "required"), ("price", "money.invalid"), ("vat_rate", "catalogue.vat_rate"),
        ("kind", "catalogue.kind"), ("active", "catalogue.flag")}


def test_a_csv_price_list_from_1c_in_cp1251_with_semicolons():
    content = ("Наименование;Артикул;Ед. изм.;Цена;НДС;Товарная линия;Тип;Активен\n"
               "Монтаж;M-1;час;1500;без НДС;Услуги;услуга;да\n"
               "\n"
               "Фреза;F-20;шт;250,75;20;Инструмент;товар;нет\n").encode("cp1251")
    rows = catalogue.parse_import(content, "прайс.csv")
    assert [(r.name, r.article, r.unit, r.price, r.vat_rate, r.product_line, r.kind, r.active)
            for r in rows] == [
        ("Монтаж", "M-1", "час", Decimal("1500.00"), "none", "Услуги", "service", True),
        ("Фреза", "F-20", "шт", Decimal("250.75"), "20", "Инструмент", "goods", False)]


def test_bad_lines_are_named_by_their_line_in_the_file_and_nothing_is_returned():
    content = ("name,article,price\n"
               "Болт,B-1,10\n"
               ",B-2,5\n"            # line 3: no name
               "Гайка,B-3,1.234\n"   # line 4: three decimals
               "Шайба,B-1,2\n").encode()  # line 5: the article of line 2 again
    with pytest.raises(ValidationError) as exc:
        catalogue.parse_import(content, "list.csv")
    got = [(e["field"], e["key"], e["params"]["line"], e["params"].get("reason"))
           for e in exc.value.errors]
    assert got == [("rows.3.name", "catalogue.import.line", 3, "required"),
                   ("rows.4.price", "catalogue.import.line", 4, "money.places"),
                   ("rows.5.article", "catalogue.import.duplicate", 5, None)]
    assert exc.value.errors[2]["params"]["other"] == 2


def _xlsx(rows):
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.close()
    return buffer.getvalue()


def test_an_xlsx_price_list_with_numeric_cells():
    content = _xlsx([["Название", "Артикул", "Цена", "НДС"],
                     ["Пресс", 1001, 99999.99, 22],
                     ["Ключ", "K-7", 12, "0"]])
    rows = catalogue.parse_import(content, "price.XLSX")
    assert [(r.name, r.article, r.price, r.vat_rate) for r in rows] == [
        ("Пресс", "1001", Decimal("99999.99"), "22"), ("Ключ", "K-7", Decimal("12.00"), "0")]


@pytest.mark.parametrize("content,name,key", [
    (b"", "a.csv", "catalogue.import.empty"),
    (b"not a zip at all", "a.xlsx", "catalogue.import.broken"),
    (b"PK\x03\x04garbage", "a.xlsx", "catalogue.import.broken"),
    (b"name;price\n", "a.csv", "catalogue.import.empty"),
    (b"what;ever\n1;2\n", "a.csv", "catalogue.import.header"),
    (b"name;price\n", "a.pdf", "catalogue.import.format"),
    (b"a\x00b;c\n", "a.csv", "catalogue.import.broken"),
])
def test_a_file_that_is_not_a_price_list_is_refused_before_it_is_read(content, name, key):
    with pytest.raises(ValidationError) as exc:
        catalogue.parse_import(content, name)
    assert (exc.value.field, exc.value.key) == ("file", key)


def test_a_huge_file_is_refused_by_its_size():
    with pytest.raises(ValidationError) as exc:
        catalogue.parse_import(b"x" * (catalogue.MAX_FILE_BYTES + 1), "a.csv")
    assert exc.value.key == "catalogue.import.too_big"


def test_the_event_keeps_each_lines_product_line():
    event = catalogue.lines_event(5, 2, Decimal("30.00"), [
        {"kind": "goods", "amount": Decimal("20.00"), "catalogue_id": 9,
         "product_line": "Станки", "name": "x"},
        {"kind": "service", "amount": Decimal("10.00"), "catalogue_id": None,
         "product_line": None}])
    assert event["lines"] == [
        {"catalogue_id": 9, "product_line": "Станки", "kind": "goods", "amount": Decimal("20.00")},
        {"catalogue_id": None, "product_line": None, "kind": "service",
         "amount": Decimal("10.00")}]
