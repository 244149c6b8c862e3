"""The product catalogue's rules (goods and services the calculator picks from): checking
one product, and reading a CSV/XLSX price list into checked rows before anything is
written.  Pure: no nameko, no sessions."""
from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.kit import parse
from services.kit.errors import ValidationError

KINDS = ("goods", "service")
# "none" is "без НДС"; 22 % is the rate from 2026, 20 % stays for older price lists.
VAT_RATES = ("none", "0", "5", "7", "10", "20", "22")
NAME_LIMIT = 300
ARTICLE_LIMIT = 100
UNIT_LIMIT = 20
LINE_LIMIT = 200
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
MAX_REPORTED = 50  # a broken file names its first errors, not ten thousand of them

# Column headers a price list may use (Russian as exported from 1C or typed, or English).
HEADERS: dict[str, str] = {
    "name": "name", "название": "name", "наименование": "name", "товар": "name",
    "article": "article", "артикул": "article", "код": "article", "sku": "article",
    "unit": "unit", "ед.": "unit", "ед": "unit", "единица": "unit",
    "единица измерения": "unit", "ед. изм.": "unit",
    "price": "price", "цена": "price", "цена, руб.": "price",
    "vat": "vat_rate", "vat_rate": "vat_rate", "ндс": "vat_rate", "ставка ндс": "vat_rate",
    "ндс, %": "vat_rate",
    "product_line": "product_line", "line": "product_line", "товарная линия": "product_line",
    "линейка": "product_line", "группа": "product_line",
    "kind": "kind", "тип": "kind", "вид": "kind",
    "active": "active", "активен": "active", "активна": "active", "активный": "active",
}
_KIND_WORDS = {"goods": "goods", "товар": "goods", "service": "service", "услуга": "service"}
_YES = {"1", "да", "yes", "true", "y", "+", "д"}
_NO = {"0", "нет", "no", "false", "n", "-", "н"}


@dataclass(frozen=True)
class Product:
    name: str
    article: str
    unit: str
    price: Decimal
    vat_rate: str
    product_line: str
    kind: str
    active: bool

    def columns(self) -> dict[str, Any]:
        return {"name": self.name, "article": self.article or None, "unit": self.unit,
                "price": self.price, "vat_rate": self.vat_rate,
                "product_line": self.product_line, "kind": self.kind, "active": self.active}


def vat_rate(value: object, field: str = "vat_rate") -> str:
    """"20", "20%", 20, "без НДС" -> one of VAT_RATES."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "none"
    raw = str(value).strip().lower().replace("%", "").replace(" ", "")
    if raw in {"безндс", "none", "нет", "-"}:
        return "none"
    if raw.endswith(".0"):
        raw = raw[:-2]
    if raw not in VAT_RATES:
        raise ValidationError(f"Ставка НДС «{parse.shown(value)}» не из списка.", field,
                              key="catalogue.vat_rate",
                              params={"value": parse.shown(value),
                                      "options": ", ".join(VAT_RATES[1:])})
    return raw


def flag(value: object, field: str) -> bool:
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    raw = str(value).strip().lower()
    if raw in _YES:
        return True
    if raw in _NO:
        return False
    raise ValidationError(f"«{parse.shown(value)}»: нужно «да» или «нет».", field,
                          key="catalogue.flag", params={"value": parse.shown(value)})


def kind(value: object, field: str = "kind") -> str:
    if value is None or value == "":
        return "goods"
    found = _KIND_WORDS.get(str(value).strip().lower())
    if found is None:
        raise ValidationError(f"«{parse.shown(value)}»: товар или услуга.", field,
                              key="catalogue.kind", params={"value": parse.shown(value)})
    return found


def _cell_text(value: object) -> object:
    """Spreadsheet cells arrive as numbers too: an article 1001 is the text "1001"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value


def _price(value: object, field: str) -> Decimal:
    if isinstance(value, float):  # a spreadsheet number: its shortest decimal spelling
        value = repr(value)
    return parse.money(value, field)


def validate_product(data: Mapping[str, Any] | object, prefix: str = "") -> Product:
    """One product from a form, the API or an import row; every wrong field at once."""
    if not isinstance(data, Mapping):
        raise ValidationError("Ожидается объект.", prefix.rstrip(".") or "product",
                              key="object.invalid")
    errors = parse.Collector()
    f = prefix
    name = errors.check(parse.text, _cell_text(data.get("name")), f + "name", limit=NAME_LIMIT)
    article = errors.check(parse.text, _cell_text(data.get("article")), f + "article",
                           required=False, limit=ARTICLE_LIMIT)
    unit = errors.check(parse.text, _cell_text(data.get("unit")), f + "unit", required=False,
                        limit=UNIT_LIMIT)
    price = errors.check(_price, data.get("price"), f + "price")
    rate = errors.check(vat_rate, data.get("vat_rate"), f + "vat_rate")
    line = errors.check(parse.text, _cell_text(data.get("product_line")), f + "product_line",
                        required=False, limit=LINE_LIMIT)
    sort = errors.check(kind, data.get("kind"), f + "kind")
    active = errors.check(flag, data.get("active"), f + "active")
    errors.raise_any()
    return Product(name=name, article=article, unit=unit or "шт", price=price, vat_rate=rate,
                   product_line=line, kind=sort, active=active)


# ------------------------------------------------------------------------------ import

def read_table(content: bytes, filename: str) -> list[list[object]]:
    """The file's rows as cells, after checking that it is what it says it is."""
    if not content:
        raise ValidationError("Файл пуст.", "file", key="catalogue.import.empty")
    if len(content) > MAX_FILE_BYTES:
        raise ValidationError("Файл больше 5 МБ.", "file", key="catalogue.import.too_big",
                              params={"max_mb": MAX_FILE_BYTES // (1024 * 1024)})
    lower = filename.lower()
    if lower.endswith(".xlsx"):
        return _xlsx_rows(content)
    if lower.endswith(".csv") or lower.endswith(".txt"):
        return _csv_rows(content)
    raise ValidationError("Нужен файл CSV или XLSX.", "file", key="catalogue.import.format",
                          params={"name": parse.shown(filename)})


def _xlsx_rows(content: bytes) -> list[list[object]]:
    # A real XLSX is a zip with a workbook part; anything else is refused before openpyxl
    # parses it (and a zip bomb is bounded by the part's declared size).
    bad = ValidationError("Файл не похож на XLSX.", "file", key="catalogue.import.broken")
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            info = archive.getinfo("xl/workbook.xml")
            if sum(i.file_size for i in archive.infolist()) > 20 * MAX_FILE_BYTES or \
                    info.file_size <= 0:
                raise bad
    except (zipfile.BadZipFile, KeyError):
        raise bad from None
    from openpyxl import load_workbook  # only when an XLSX comes

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds on a damaged file
        raise bad from None
    try:
        sheet = book.worksheets[0]
        rows: list[list[object]] = []
        for row in sheet.iter_rows(values_only=True):
            rows.append(list(row))
            if len(rows) > MAX_ROWS + 1:
                raise _too_many()
        return rows
    finally:
        book.close()


def _csv_rows(content: bytes) -> list[list[object]]:
    for encoding in ("utf-8-sig", "cp1251"):
        try:
            decoded = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - cp1251 decodes almost any byte
        raise ValidationError("Не удалось прочитать кодировку.", "file",
                              key="catalogue.import.encoding")
    if "\x00" in decoded:
        raise ValidationError("Файл не похож на CSV.", "file", key="catalogue.import.broken")
    first = decoded.split("\n", 1)[0]
    delimiter = max(";,\t", key=first.count)
    rows: list[list[object]] = []
    for row in csv.reader(io.StringIO(decoded), delimiter=delimiter):
        rows.append(list(row))
        if len(rows) > MAX_ROWS + 1:
            raise _too_many()
    return rows


def _too_many() -> ValidationError:
    return ValidationError(f"Не больше {MAX_ROWS} строк.", "file",
                           key="catalogue.import.too_many", params={"max": MAX_ROWS})


def parse_import(content: bytes, filename: str) -> list[Product]:
    """Every product of a price list, or a ValidationError naming each bad line and field
    (``line`` is the file's own line number, the header being line 1); nothing is
    returned from a file with any error, so nothing is half-imported."""
    rows = read_table(content, filename)
    if not any(any(c not in (None, "") for c in r) for r in rows):
        raise ValidationError("Файл пуст.", "file", key="catalogue.import.empty")
    header = [HEADERS.get(str(c or "").strip().lower()) for c in rows[0]]
    if "name" not in header or "price" not in header:
        raise ValidationError("В первой строке нужны столбцы «Название» и «Цена».", "file",
                              key="catalogue.import.header")
    errors: list[dict[str, Any]] = []
    products: list[Product] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(c not in (None, "") and str(c).strip() for c in row):
            continue
        data = {col: row[i] for i, col in enumerate(header) if col and i < len(row)}
        try:
            product = validate_product(data)
        except ValidationError as exc:
            errors.extend(_on_line(exc.errors, number))
            continue
        if product.article:
            if product.article in seen:
                errors.append(_line_error(number, "article", "catalogue.import.duplicate",
                                          {"value": product.article,
                                           "other": seen[product.article]},
                                          "Артикул уже встречался в файле."))
                continue
            seen[product.article] = number
        products.append(product)
    if errors:
        raise ValidationError.many(errors[:MAX_REPORTED])
    if not products:
        raise ValidationError("В файле нет товаров.", "file", key="catalogue.import.empty")
    return products


_FIELD_NAMES = {"name": "название", "article": "артикул", "unit": "единица", "price": "цена",
                "vat_rate": "НДС", "product_line": "товарная линия", "kind": "тип",
                "active": "активен"}


def _line_error(number: int, field: str, key: str, params: dict[str, Any],
                message: str) -> dict[str, Any]:
    return {"field": f"rows.{number}.{field}", "key": key,
            "params": {**params, "line": number, "column": _FIELD_NAMES.get(field, field),
                       "field": field},
            "message": f"Строка {number}, {_FIELD_NAMES.get(field, field)}: {message}"}


def _on_line(items: Iterable[dict[str, Any]], number: int) -> list[dict[str, Any]]:
    """A product's field errors as the file's: the line, the column and the reason (the
    reason's own key travels as ``params.reason`` so the gateway can translate it too)."""
    out = []
    for item in items:
        field = str(item.get("field") or "")
        out.append(_line_error(number, field, "catalogue.import.line",
                               {"reason": item.get("key") or "", **(item.get("params") or {})},
                               str(item.get("message") or "")))
    return out


def search_terms(query: object) -> str:
    """The search-as-you-type query, stripped and bounded (empty: the first products)."""
    if query is None:
        return ""
    return parse.text(query, "q", required=False, limit=100)


def line_summary(lines: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What analytics needs of priced lines: the product line to group sales by."""
    return [{"catalogue_id": line.get("catalogue_id"), "product_line": line.get("product_line"),
             "kind": line.get("kind"), "amount": line["amount"]} for line in lines]


def lines_event(deal_id: int, version: int, total: Decimal,
                lines: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``calculation_saved``: ``version`` is the calculation's, so a late event changes
    nothing that a newer one set."""
    return {"deal_id": deal_id, "version": version, "total": total,
            "lines": line_summary(lines)}
