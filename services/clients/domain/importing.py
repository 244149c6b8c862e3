"""Import and export of clients with their contacts as CSV or XLSX.

A file is read into rows (one row = one client and at most one contact), every row is
validated with the same rules as the forms, and the result is a preview: the rows that
are fine and a row-by-row list of what is wrong.  Nothing here writes anywhere; the
service decides what to save.  Row numbers are those a person sees in Excel: the header
is row 1.

Files come from outside, so they are checked before being trusted: a size limit, the
format recognised from the bytes (never the file name), the unpacked size of an XLSX
capped (a small zip can unpack to gigabytes), and row/column limits.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal

import openpyxl
from openpyxl.cell import WriteOnlyCell

from services.clients.domain.clients import (
    CLIENT_FIELDS,
    validate_client_update,
    validate_contact,
)
from services.clients.domain.requisites import KIND_FIELDS, collect_requisites
from services.kit.errors import ValidationError

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
MAX_ROWS = 10_000
MAX_COLUMNS = 100

Format = Literal["csv", "xlsx"]

# Canonical column -> header in an exported file, per language.  Import accepts these
# and the aliases below, case-insensitively.
COLUMNS: dict[str, tuple[str, str]] = {
    "name": ("Название", "name"),
    "kind": ("Тип", "kind"),
    "inn": ("ИНН", "inn"),
    "kpp": ("КПП", "kpp"),
    "ogrn": ("ОГРН", "ogrn"),
    "ogrnip": ("ОГРНИП", "ogrnip"),
    "address": ("Адрес", "address"),
    "legal_address": ("Юридический адрес", "legal_address"),
    "postal_address": ("Почтовый адрес", "postal_address"),
    "website": ("Сайт", "website"),
    "bik": ("БИК", "bik"),
    "settlement_account": ("Расчетный счет", "settlement_account"),
    "correspondent_account": ("Корреспондентский счет", "correspondent_account"),
    "contact_name": ("Контакт", "contact_name"),
    "position": ("Должность", "position"),
    "phone": ("Телефон", "phone"),
    "email": ("Email", "email"),
}
HEADER_ALIASES: dict[str, str] = {
    "наименование": "name", "клиент": "name", "компания": "name", "организация": "name",
    "company": "name", "client": "name",
    "вид": "kind", "type": "kind", "тип клиента": "kind",
    "website": "website", "site": "website", "url": "website", "веб-сайт": "website",
    "р/с": "settlement_account", "расч. счет": "settlement_account",
    "account": "settlement_account",
    "к/с": "correspondent_account", "корр. счет": "correspondent_account",
    "корр.счет": "correspondent_account", "корсчет": "correspondent_account",
    "контактное лицо": "contact_name", "фио": "contact_name", "contact": "contact_name",
    "телефоны": "phone", "тел.": "phone", "тел": "phone", "phones": "phone",
    "e-mail": "email", "эл. почта": "email", "электронная почта": "email",
    "почта": "email", "emails": "email",
}
KIND_LABELS = {"legal": ("Юрлицо", "legal"), "entrepreneur": ("ИП", "entrepreneur"),
               "person": ("Физлицо", "person")}
KIND_ALIASES = {
    "юл": "legal", "юр. лицо": "legal", "юридическое лицо": "legal",
    "организация": "legal", "компания": "legal",
    "индивидуальный предприниматель": "entrepreneur",
    "фл": "person", "физ. лицо": "person", "физическое лицо": "person",
    "частное лицо": "person",
}
CLIENT_COLUMNS = CLIENT_FIELDS
CONTACT_COLUMNS = ("contact_name", "position", "phone", "email")
# Several phones or e-mails in one cell: split on new lines, commas and semicolons, but
# not inside a stored extension (";ext=12") or before a typed one (", доб. 12").
_LIST_SEPARATOR = re.compile(r"\s*(?:\n|;(?!ext=)|,(?!\s*(?:доб|ext|x\b|#)))\s*")
# Spreadsheets run a cell starting with one of these as a formula ("CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_STORED_PHONE = re.compile(r"\+\d{1,15}(;ext=\d{1,20})?")

# Characters XML 1.0 cannot carry: openpyxl refuses them, so they are dropped on export.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_XLSX_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls and password-protected .xlsx


@dataclass(frozen=True)
class RowError:
    """One problem in one row; ``field`` is a canonical column name (or "row")."""

    row_number: int
    field: str
    message: str


@dataclass
class ImportPreview:
    """What an import would do.

    ``rows_ok``: {"row_number", "client": {name, kind, website, address},
    "requisites": the ``validate_requisites`` result for the kind,
    "contact": the ``validate_contact`` result or None}.  ``warnings`` are for rows
    that are fine but deserve a look (a treasury account).  ``ignored_columns`` are
    headers that mean nothing to the CRM.
    """

    rows_ok: list[dict[str, Any]]
    errors: list[RowError]
    warnings: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def file_error(message: str) -> ValidationError:
    return ValidationError(f"Файл не прочитать: {message}", field="file", key="import.file",
                           params={"reason": message})


def detect_format(data: bytes) -> Format:
    """The format read from the bytes, "xlsx" or "csv"; other files are refused with a reason."""
    if len(data) > MAX_FILE_BYTES:
        raise file_error(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    if not data.strip():
        raise file_error("is empty")
    if data.startswith(_XLSX_MAGIC):
        return "xlsx"
    if data.startswith(_OLE2_MAGIC):
        raise file_error("old Excel (.xls) or password-protected workbooks cannot be "
                         "read; save it as .xlsx without a password, or as CSV")
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE,
                                                       codecs.BOM_UTF16_BE)):
        raise file_error("is neither a CSV nor an XLSX file")
    return "csv"


def decode_text(data: bytes) -> str:
    """Text of a CSV file: UTF-8 (with or without BOM), UTF-16 with BOM, or Windows-1251.

    Excel in Russian saves "CSV" as Windows-1251 and "Unicode text" as UTF-16; a
    Cyrillic cp1251 file is practically never valid UTF-8, so UTF-8 is tried first.
    """
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                          (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(encoding)
            except UnicodeDecodeError:
                raise file_error(f"starts as {encoding.upper()} but is not valid "
                                 f"{encoding.upper()} text") from None
    for encoding in ("utf-8", "cp1251"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise file_error("the text encoding is not UTF-8 or Windows-1251; "
                     "save it as \"CSV UTF-8\"")


def sniff_delimiter(text: str) -> str:
    """";" (Excel in Russian), "," or tab: whichever the header line has most of."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {sep: header.count(sep) for sep in (";", ",", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _unformula(value: str) -> str:
    # Undo the "'" that export_rows puts before formula-like values.
    return value[1:] if value.startswith("'") and value[1:2] in _FORMULA_START else value


def read_csv(data: bytes) -> Iterator[list[str]]:
    text = decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text))
    try:
        for record in reader:
            yield [_unformula(value) for value in record]
    except csv.Error as exc:
        raise file_error(f"broken CSV at line {reader.line_num}: {exc}") from None


def cell_text(value: object) -> str:
    """A spreadsheet cell as the text a person sees.

    Digits typed into a numeric cell come back as int (fine) or, past 15 digits, as a
    float that has lost digits: its repr ("4.0702810200000004e+19") then fails digit
    validation with the value shown, instead of passing as a wrong account.
    """
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value).strip()


def _check_unpacked_size(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise file_error("looks like XLSX but the archive is damaged") from None
    if "xl/workbook.xml" not in names:
        raise file_error("is a ZIP archive but not an Excel workbook (.xlsx)")
    if unpacked > MAX_UNPACKED_BYTES:
        raise file_error("the workbook is too large once unpacked")


def read_xlsx(data: bytes) -> Iterator[list[str]]:
    """Rows of the first sheet, as text."""
    _check_unpacked_size(data)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types on a malformed workbook
        raise file_error(f"the workbook cannot be read ({type(exc).__name__})") from exc
    try:
        sheet = workbook.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            yield [cell_text(value) for value in values[:MAX_COLUMNS]]
    except Exception as exc:  # same: damage may only show while streaming the rows
        raise file_error(f"the workbook cannot be read ({type(exc).__name__})") from exc
    finally:
        workbook.close()


def header_column(header: str) -> str | None:
    """The canonical column a header means ("ИНН", "inn", "Телефон*" -> ...), or None."""
    key = " ".join(header.replace("\ufeff", "").split()).lower().replace("ё", "е")
    key = key.rstrip("*: ")
    for column, labels in COLUMNS.items():
        if key in (label.lower().replace("ё", "е") for label in labels):
            return column
    return HEADER_ALIASES.get(key)


def _map_header(header: list[str]) -> tuple[list[str | None], list[str]]:
    columns = [header_column(name) for name in header]
    seen: dict[str, str] = {}
    for name, column in zip(header, columns, strict=True):
        if column is None:
            continue
        if column in seen:
            raise file_error(f"columns '{seen[column]}' and '{name}' both mean {column}")
        seen[column] = name
    if not seen:
        raise file_error("no known column headers in the first row; expected e.g. "
                         "Название, ИНН, Телефон, Email, Контакт")
    pairs = zip(header, columns, strict=True)
    ignored = [name for name, column in pairs if column is None and name]
    return columns, ignored


def parse_table(data: bytes) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """(rows as (row_number, {column: text}), ignored headers); blank rows are skipped."""
    records = read_xlsx(data) if detect_format(data) == "xlsx" else read_csv(data)
    numbered = ((number, record) for number, record in enumerate(records, start=1)
                if any(value.strip() for value in record))
    first = next(numbered, None)
    if first is None:
        raise file_error("has no rows")
    columns, ignored = _map_header(first[1])
    rows: list[tuple[int, dict[str, str]]] = []
    for number, record in numbered:
        if len(rows) == MAX_ROWS:
            raise file_error(f"more than {MAX_ROWS} rows; split it into several files")
        # A short record (trailing empty cells cut off) simply lacks those columns.
        cells = zip(columns, record, strict=False)
        values = {column: value.strip() for column, value in cells if column}
        rows.append((number, values))
    return rows, ignored


def parse_kind(text: str, inn: str) -> str:
    """The client kind from the "Тип" cell, or from the INN length when it is empty.

    A row with neither is an error rather than a guess: a company typed without an INN
    must not silently become a private person.
    """
    key = " ".join(text.split()).lower()
    if key:
        for kind, labels in KIND_LABELS.items():
            if key in (label.lower() for label in labels):
                return kind
        if key in KIND_ALIASES:
            return KIND_ALIASES[key]
        raise ValidationError(f"Неизвестный тип клиента {text!r}: Юрлицо, ИП или Физлицо.",
                              field="kind", key="import.kind", params={"value": text})
    digits = "".join(inn.split())
    if len(digits) in (10, 12):
        return "legal" if len(digits) == 10 else "entrepreneur"
    raise ValidationError("Заполните Тип (Юрлицо, ИП, Физлицо) или ИНН.", field="kind",
                          key="import.kind_missing")


def split_list(text: str) -> list[str]:
    """Several phones or e-mails typed into one cell."""
    return [item for item in _LIST_SEPARATOR.split(text) if item]


def _requisites_input(kind: str, values: Mapping[str, str]) -> dict[str, str]:
    """The requisites a row gives for ``kind``.

    A private person's name, phone and e-mail are his own requisites, unless the row
    names a separate contact person (then they are that person's).  A column that
    belongs to another kind (KPP on an IP's row) is passed on, so it is reported
    rather than silently dropped.
    """
    given = {column: value for column, value in values.items() if value}
    if kind == "person":
        given["full_name"] = given.pop("name", "")
        if given.get("contact_name"):
            given.pop("phone", None)
            given.pop("email", None)
    elsewhere = set(CLIENT_COLUMNS + CONTACT_COLUMNS) - set(KIND_FIELDS[kind])
    return {column: value for column, value in given.items() if column not in elsewhere}


def _contact_input(kind: str, values: Mapping[str, str]) -> dict[str, Any] | None:
    name = values.get("contact_name", "")
    reach = values.get("phone", "") or values.get("email", "")
    if not name and (kind == "person" or not reach):
        return None
    if not name:
        raise ValidationError("У телефона или e-mail нужно имя контакта (столбец Контакт).",
                              field="contact_name", key="import.contact_name")
    return {"name": name, "position": values.get("position") or None,
            "phones": split_list(values.get("phone", "")),
            "emails": split_list(values.get("email", ""))}


_CONTACT_FIELD = {"name": "contact_name", "phones": "phone", "emails": "email"}
_PERSON_FIELD = {"full_name": "name"}


def _column_of(error: ValidationError, renames: Mapping[str, str]) -> str:
    """The file column an error is about ("phones.1" of a contact -> "phone")."""
    name = (error.field or "row").split(".")[0]
    return renames.get(name, name)


@dataclass
class _RowCheck:
    """Runs the checks of one row and collects their errors, so a row reports them all."""

    number: int
    errors: list[RowError] = field(default_factory=list)

    def run(self, check: Callable[[], Any], renames: Mapping[str, str] | None = None) -> Any:
        """The result of ``check``, or None with its ValidationError recorded."""
        try:
            return check()
        except ValidationError as exc:
            self.add([exc], renames)
            return None

    def add(self, problems: Iterable[ValidationError],
            renames: Mapping[str, str] | None = None) -> None:
        self.errors += [RowError(self.number, _column_of(exc, renames or {}), exc.message)
                        for exc in problems]


def validate_row(number: int, values: Mapping[str, str]
                 ) -> tuple[dict[str, Any] | None, list[RowError], list[RowError]]:
    """(row for ``rows_ok`` or None, errors, warnings) of one data row."""
    check = _RowCheck(number)
    kind = check.run(lambda: parse_kind(values.get("kind", ""), values.get("inn", "")))
    # Checked as changes, not as a new client: a missing kind is already reported above.
    given = {column: values[column] for column in ("name", "website", "address")
             if values.get(column)}
    client = check.run(lambda: validate_client_update(given))
    contact = check.run(lambda: _contact_input(kind, values), _CONTACT_FIELD)
    if contact is not None:
        contact = check.run(lambda: validate_contact(contact), _CONTACT_FIELD)
    if kind is None:
        return None, check.errors, []
    requisites, notes, problems = collect_requisites(kind, _requisites_input(kind, values))
    check.add(problems, _PERSON_FIELD)
    if check.errors:
        return None, check.errors, []
    warnings = [RowError(number, note.split(":")[0], note) for note in notes]
    client = dict.fromkeys(CLIENT_FIELDS) | client | {"kind": kind}
    row = {"row_number": number, "client": client, "requisites": requisites,
           "contact": contact}
    return row, [], warnings


def preview_import(data: bytes) -> ImportPreview:
    """Read and validate a CSV or XLSX file of clients; see ``ImportPreview``.

    Raises ValidationError(field="file") when the file as a whole cannot be used.
    """
    rows, ignored = parse_table(data)
    preview = ImportPreview(rows_ok=[], errors=[], ignored_columns=ignored)
    for number, values in rows:
        row, errors, warnings = validate_row(number, values)
        if row is not None:
            preview.rows_ok.append(row)
        preview.errors.extend(errors)
        preview.warnings.extend(warnings)
    return preview


def group_rows(rows_ok: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the same INN folded into one client with all their contacts.

    An export writes one row per contact, so importing it back must not create one
    client per contact; the first row of a client gives the client's fields.  Rows
    without an INN (private persons) stay one client each: two people may share a name.
    Result items: {"row_numbers", "client", "requisites", "contacts": [...]}, in file order.
    """
    groups: dict[str, dict[str, Any]] = {}
    for row in rows_ok:
        key = row["requisites"].get("inn") or f"row {row['row_number']}"
        group = groups.setdefault(key, {"row_numbers": [], "client": row["client"],
                                        "requisites": row["requisites"], "contacts": []})
        group["row_numbers"].append(row["row_number"])
        if row["contact"] is not None:
            group["contacts"].append(row["contact"])
    return list(groups.values())


def _cell_value(column: str, value: object, lang_index: int) -> str:
    if value is None:
        return ""
    if column == "kind" and isinstance(value, str) and value in KIND_LABELS:
        return KIND_LABELS[value][lang_index]
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return _CONTROL_CHARS.sub("", str(value))


def _csv_safe(text: str) -> str:
    """Neutralise formula-like text for spreadsheets; stored phones are left readable."""
    if text.startswith(_FORMULA_START) and not _STORED_PHONE.fullmatch(text):
        return "'" + text
    return text


def _export_table(clients: Iterable[Mapping[str, Any]], columns: Sequence[str],
                  lang: str) -> tuple[list[str], list[list[str]]]:
    unknown = [column for column in columns if column not in COLUMNS]
    if unknown or not columns:
        raise ValidationError(f"Нет такого столбца: {unknown[0] if unknown else '(нет)'}.",
                              field="columns", key="columns.unknown",
                              params={"value": unknown[0] if unknown else ""})
    if lang not in ("ru", "en"):
        raise ValidationError(f"{lang!r} — такого варианта нет.", field="lang",
                              key="choice.invalid",
                              params={"value": str(lang), "options": "ru, en"})
    index = 0 if lang == "ru" else 1
    header = [COLUMNS[column][index] for column in columns]
    rows = [[_cell_value(column, client.get(column), index) for column in columns]
            for client in clients]
    return header, rows


def export_rows(clients: Iterable[Mapping[str, Any]], columns: Sequence[str],
                fmt: str, lang: str = "ru") -> bytes:
    """A file of ``clients`` (flat mappings keyed by ``COLUMNS`` names) in ``fmt``.

    CSV is what Excel in Russian opens by double click: UTF-8 with BOM, ";" delimiter,
    CRLF; formula-like cells get a leading "'", which ``preview_import`` removes.  XLSX
    stores every cell as text, so INNs keep leading zeros and accounts all 20 digits.
    Lists (a contact's phones) are joined with ", ".
    """
    header, rows = _export_table(clients, columns, lang)
    if fmt == "csv":
        return _write_csv(header, rows)
    if fmt == "xlsx":
        return _write_xlsx(header, rows)
    raise ValidationError(f"{fmt!r} — такого варианта нет.", field="fmt", key="choice.invalid",
                          params={"value": str(fmt), "options": "csv, xlsx"})


def _write_csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_csv_safe(value) for value in row] for row in rows)
    return out.getvalue().encode("utf-8-sig")


def _write_xlsx(header: list[str], rows: list[list[str]]) -> bytes:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Clients")
    for values in [header, *rows]:
        cells = []
        for value in values:
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"  # never a formula, never a number that loses digits
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


EXPORT_COLUMNS = tuple(COLUMNS)


def client_rows(client: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A client (as ``get_client`` returns it) as export rows: one per contact, or one
    without a contact, so that importing the file back gives the same client."""
    requisites = dict(client.get("requisites") or {})
    base: dict[str, Any] = {key: value for key, value in requisites.items() if key in COLUMNS}
    if client.get("kind") == "person":
        base.pop("full_name", None)
    base.update(name=client.get("name"), kind=client.get("kind"),
                address=client.get("address"), website=client.get("website"))
    contacts = client.get("contacts") or []
    if not contacts:
        return [base]
    if client.get("kind") == "person":
        # the person's own phone and e-mail would be read as the contact's on import
        base.pop("phone", None)
        base.pop("email", None)
    return [{**base, "contact_name": contact.get("name"), "position": contact.get("position"),
             "phone": contact.get("phones") or [], "email": contact.get("emails") or []}
            for contact in contacts]


PREVIEW_CLIENTS = 20  # grouped clients shown in an import preview


def preview_report(preview: ImportPreview, groups: list[dict[str, Any]],
                   known: Mapping[str, int]) -> dict[str, Any]:
    """What an import of the previewed file would do (``known``: INN -> existing client),
    without its ``import_id``."""
    def inn(group: dict[str, Any]) -> Any:
        return group["requisites"].get("inn")

    return {
        "rows_ok": len(preview.rows_ok),
        "rows_with_errors": len({e.row_number for e in preview.errors}),
        "new_clients": sum(1 for g in groups if inn(g) not in known),
        "existing_clients": sum(1 for g in groups if inn(g) in known),
        "errors": [vars(e) for e in preview.errors],
        "warnings": [vars(w) for w in preview.warnings],
        "ignored_columns": preview.ignored_columns,
        "clients": [{"name": g["client"].get("name"), "kind": g["client"]["kind"],
                     "inn": inn(g), "rows": g["row_numbers"],
                     "contacts": [c["name"] for c in g["contacts"]],
                     "existing_id": known.get(inn(g))}
                    for g in groups[:PREVIEW_CLIENTS]],
    }


ContactKey = tuple[int, str, tuple[str, ...]]


def contacts_to_add(groups: Sequence[Mapping[str, Any]], client_ids: Sequence[int],
                    have: set[ContactKey]) -> list[tuple[int, dict[str, Any]]]:
    """(client_id, contact) for every imported contact its client does not have yet
    (``have``: (client, case-folded name, phones) of the contacts already there): one with
    the same name and phones is not added twice."""
    seen = set(have)
    wanted = []
    for group, client_id in zip(groups, client_ids, strict=True):
        for contact in group["contacts"]:
            key = (client_id, contact["name"].casefold(), tuple(contact["phones"]))
            if key not in seen:
                seen.add(key)
                wanted.append((client_id, contact))
    return wanted
