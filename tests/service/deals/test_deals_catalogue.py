"""The product catalogue in the real deals service: edited, imported all or nothing,
searched as one types, and picked into calculator lines that keep their product line."""
from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from services.deals.models import Product
from services.kit.errors import Conflict, ValidationError


def b64(text: str, encoding: str = "utf-8") -> str:
    return base64.b64encode(text.encode(encoding)).decode()


def test_products_are_saved_changed_retired_and_found_as_one_types(deals):
    lathe = deals.call("deals", "save_product", {
        "name": "Токарный станок 16К20", "article": "ST-16", "price": "850000.00",
        "vat_rate": "22", "product_line": "Станки"}, user_id=1)
    assert (lathe["price"], lathe["unit"], lathe["active"], lathe["version"]) == \
        ("850000.00", "шт", True, 1)
    deals.call("deals", "save_product", {"name": "Наладка станка", "kind": "service",
                                         "price": "15000", "product_line": "Сервис"},
               user_id=1)
    assert [p["name"] for p in deals.call("deals", "list_products", "стан")] == [
        "Наладка станка", "Токарный станок 16К20"]
    assert [p["name"] for p in deals.call("deals", "list_products", "st-1")] == [
        "Токарный станок 16К20"]
    assert deals.call("deals", "list_products", "100%_") == []  # wildcards are literal

    with pytest.raises(ValidationError) as taken:
        deals.call("deals", "save_product", {"name": "Другой", "article": "ST-16",
                                             "price": "1"}, user_id=1)
    assert (taken.value.field, taken.value.key) == ("article", "catalogue.article_taken")
    retired = deals.call("deals", "save_product", {**lathe, "active": False, "version": 1},
                         user_id=1)
    assert retired["version"] == 2
    assert [p["name"] for p in deals.call("deals", "list_products", "токар")] == []
    assert [p["name"] for p in deals.call("deals", "list_products", "токар", True)] == [
        "Токарный станок 16К20"]
    with pytest.raises(Conflict):
        deals.call("deals", "save_product", {**lathe, "version": 1}, user_id=1)
    assert deals.call("deals", "list_product_lines") == ["Сервис", "Станки"]


def test_an_import_is_all_or_nothing_and_a_repeat_updates_by_article(deals, session_of):
    bad = ("Название;Артикул;Цена\nБолт;B-1;10\nГайка;B-2;десять\n")
    with pytest.raises(ValidationError) as exc:
        deals.call("deals", "import_products", b64(bad, "cp1251"), "прайс.csv", user_id=1)
    assert [(e["field"], e["params"]["line"]) for e in exc.value.errors] == [
        ("rows.3.price", 3)]
    with session_of("deals") as s:
        assert s.scalar(select(func.count()).select_from(Product)) == 0  # nothing half-done

    good = "Название;Артикул;Цена;Товарная линия\nБолт;B-1;10;Крепёж\nГайка;B-2;5;Крепёж\n"
    assert deals.call("deals", "import_products", b64(good), "a.csv", user_id=1) == {
        "created": 2, "updated": 0, "total": 2}
    again = "Название;Артикул;Цена\nБолт М8;B-1;12\nШайба;;1\n"
    assert deals.call("deals", "import_products", b64(again), "a.csv", user_id=1) == {
        "created": 1, "updated": 1, "total": 2}
    bolt = deals.call("deals", "list_products", "b-1")[0]
    assert (bolt["name"], bolt["price"], bolt["version"]) == ("Болт М8", "12.00", 2)
    with pytest.raises(ValidationError) as broken:
        deals.call("deals", "import_products", "not base64!!", "a.xlsx", user_id=1)
    assert broken.value.field == "file"


def test_a_picked_line_keeps_its_catalogue_id_and_product_line(deals, directory, spy):
    events = spy("deals", "calculation_saved")
    product = deals.call("deals", "save_product", {"name": "Фреза", "price": "250.00",
                                                   "product_line": "Инструмент"}, user_id=1)
    client = directory.client("ООО «Ромашка»")
    deal = deals.call("deals", "create_deal", {"name": "Поставка", "client_id": client["id"],
                                               "manager_id": 7}, user_id=7)
    calc = deals.call("deals", "save_calculation", deal["id"], [
        {"name": "Фреза", "catalogue_id": product["id"], "quantity": "4",
         "unit_price": "250.00"},
        {"name": "Доставка (своя строка)", "kind": "service", "unit_price": "500"}],
        user_id=7)
    assert [(x["catalogue_id"], x["product_line"], x["amount"]) for x in calc["lines"]] == [
        (product["id"], "Инструмент", "1000.00"), (None, None, "500.00")]
    sent = events.wait_for("calculation_saved")[0]["data"]
    assert sent["deal_id"] == deal["id"] and sent["version"] == calc["version"]
    assert [(x["product_line"], x["amount"]) for x in sent["lines"]] == [
        ("Инструмент", "1000.00"), (None, "500.00")]
    with pytest.raises(ValidationError) as unknown:
        deals.call("deals", "save_calculation", deal["id"], [
            {"name": "?", "catalogue_id": 999999, "unit_price": "1"}], user_id=7)
    assert (unknown.value.field, unknown.value.key) == (
        "lines.0.catalogue_id", "catalogue.unknown_product")
