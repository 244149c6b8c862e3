"""Import of clients from CSV/XLSX with a preview and a row-by-row report, and export of
the filtered list that imports back (C8)."""
from __future__ import annotations

import base64
import io

import openpyxl
import pytest

from services.kit.errors import Conflict, Forbidden, ValidationError

from .conftest import ClientsEnv, inn10, mobile, tag


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_import_takes_good_rows_whole_skips_bad_ones_and_reports_them(clients: ClientsEnv,
                                                                      manager: int):
    city_tag = tag()
    good_inn, half_inn, existing_inn = inn10(), inn10(), inn10()
    existing = clients.call("create_client", {"name": "Уже есть", "inn": existing_inn})
    phone_a, phone_b = mobile(), mobile()
    csv = (
        "Название;ИНН;Контакт;Должность;Телефон;Email\n"
        f"ООО «Импорт {city_tag}»;{good_inn};Анна;Директор;{phone_a};anna@import.ru\n"
        f"ООО «Импорт {city_tag}»;{good_inn};Борис;;{phone_b};\n"
        f"ООО «Половина {city_tag}»;{half_inn};Вера;;8 916 12;\n"  # bad phone: no client
        f"Уже есть;{existing_inn};Глеб;;{mobile()};\n"
        ";7707083894;;;;\n"  # wrong INN check digit
    ).encode()
    preview = clients.call("preview_import", b64(csv), user_id=manager, filename="a.csv")
    assert preview["rows_ok"] == 3 and preview["rows_with_errors"] == 2
    assert preview["new_clients"] == 1 and preview["existing_clients"] == 1
    assert [(e["row_number"], e["field"]) for e in preview["errors"]] == [
        (4, "phone"), (6, "inn")]
    assert preview["clients"][0]["contacts"] == ["Анна", "Борис"]
    assert preview["clients"][1]["existing_id"] == existing["id"]
    assert clients.call("search_clients", f"Импорт {city_tag}")["total"] == 0  # only a preview

    result = clients.call("run_import", preview["import_id"], user_id=manager)

    assert (result["created"], result["updated"], result["contacts_added"]) == (1, 1, 3)
    assert result["skipped_rows"] == [4, 6]
    assert clients.call("search_clients", f"Половина {city_tag}")["total"] == 0
    [imported] = clients.call("search_clients", f"Импорт {city_tag}")["items"]
    full = clients.call("get_client", imported["id"])
    assert [(c["name"], c["position"], c["phones"]) for c in full["contacts"]] == [
        ("Анна", "Директор", [phone_a]), ("Борис", None, [phone_b])]
    assert full["inn"] == good_inn
    history = clients.call("client_history", imported["id"])
    assert {h["source"] for h in history} == {"import"}
    assert [h["field"] for h in reversed(history)] == ["created", "contact", "contact"]
    assert [c["name"] for c in clients.call("list_contacts", existing["id"])] == ["Глеб"]

    with pytest.raises(Conflict):
        clients.call("run_import", preview["import_id"], user_id=manager)


def test_an_import_runs_only_for_who_uploaded_it(clients: ClientsEnv):
    csv = f"Название;ИНН\nООО «Чужой»;{inn10()}\n".encode()
    preview = clients.call("preview_import", b64(csv), user_id=1)
    with pytest.raises(Forbidden):
        clients.call("run_import", preview["import_id"], user_id=2)


@pytest.mark.parametrize(("content", "reason"), [
    ("", "empty"), ("not base64!", "base64"),
    (b64(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100), ".xls"),
])
def test_an_unusable_file_is_refused_as_a_whole(clients: ClientsEnv, content: str,
                                                reason: str):
    with pytest.raises(ValidationError) as refused:
        clients.call("preview_import", content)
    assert refused.value.field == "file" and reason in refused.value.message


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_exported_filtered_list_imports_back_without_creating_anything_twice(
        clients: ClientsEnv, manager: int, fmt: str):
    city = f"Экспорт-{tag()}"
    for name in ("ООО «Первый экспорт»", "ООО «Второй экспорт»"):
        clients.call("create_client", {
            "name": name, "inn": inn10(), "city": city, "kpp": "773601001",
            "contacts": [{"name": "Мария", "phones": [mobile()], "emails": ["m@x.ru"]},
                         {"name": "Олег", "phones": [mobile()]}]}, user_id=manager)
    clients.call("create_client", {"name": "Не в фильтре", "inn": inn10()}, user_id=manager)

    exported = clients.call("export_clients", "", filters={"city": city}, fmt=fmt)

    assert (exported["clients"], exported["rows"], exported["truncated"]) == (2, 4, False)
    content = base64.b64decode(exported["content_b64"])
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(content)).active
        assert sheet.cell(1, 1).value == "Название" and sheet.max_row == 5
    else:
        assert content.startswith(b"\xef\xbb\xbf") and "Второй экспорт".encode() in content
    preview = clients.call("preview_import", exported["content_b64"])
    assert preview["errors"] == []
    assert (preview["new_clients"], preview["existing_clients"]) == (0, 2)
    result = clients.call("run_import", preview["import_id"])
    assert (result["created"], result["contacts_added"]) == (0, 0)


def test_export_refuses_an_unknown_format(clients: ClientsEnv):
    with pytest.raises(ValidationError) as refused:
        clients.call("export_clients", "", fmt="pdf")
    assert refused.value.field == "fmt"
