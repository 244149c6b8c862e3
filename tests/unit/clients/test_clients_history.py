"""Change history lines, request splitting and export rows: the pure parts behind
update_client, merge_clients and export_clients."""
from __future__ import annotations

from typing import Any

import pytest

from services.clients.domain.clients import (
    merge_contact_update,
    split_client_input,
    validate_assignment,
)
from services.clients.domain.history import (
    change_map,
    changes,
    client_record,
    contact_summary,
)
from services.clients.domain.importing import EXPORT_COLUMNS, client_rows, export_rows
from services.clients.domain.importing import preview_import as preview
from services.kit.errors import ValidationError


def test_requisites_are_recorded_apart_from_the_display_name() -> None:
    record = client_record({"name": "Ромашка", "manager_id": 3, "id": 1},
                           {"name": "ООО «Ромашка»", "inn": "7707083893"})
    assert record == {"name": "Ромашка", "kind": None, "website": None, "address": None,
                      "city": None, "manager_id": 3, "requisites.name": "ООО «Ромашка»",
                      "requisites.inn": "7707083893"}


def test_changes_are_text_and_ignore_empty_to_empty() -> None:
    old = {"name": "A", "manager_id": 3, "requisites.kpp": None, "website": ""}
    new = {"name": "B", "manager_id": 4, "requisites.kpp": "", "website": None}
    rows = changes(old, new)
    assert rows == [("name", "A", "B"), ("manager_id", "3", "4")]
    assert change_map(rows) == {"name": ["A", "B"], "manager_id": ["3", "4"]}


def test_a_contact_reads_as_one_history_line() -> None:
    assert contact_summary({"name": "Пётр", "position": "директор",
                            "phones": ["+79161234567"], "emails": ["p@x.ru"]}) == \
        "Пётр (директор): +79161234567, p@x.ru"
    assert contact_summary({"name": "Пётр", "phones": [], "emails": []}) == "Пётр"


def test_requisites_come_at_the_top_level_or_nested() -> None:
    own, assignment, requisites, contacts = split_client_input({
        "name": "Ромашка", "inn": "7707083893", "city": "Тверь", "source": "demo",
        "requisites": {"name": "ООО «Ромашка»"}, "contacts": [{"name": "Пётр"}]})
    assert own == {"name": "Ромашка"} and assignment == {"city": "Тверь"}
    assert requisites == {"inn": "7707083893", "name": "ООО «Ромашка»"}
    assert contacts == [{"name": "Пётр"}]


@pytest.mark.parametrize(("data", "field"), [
    ([], "client"), ({"requisites": "x"}, "requisites"), ({"contacts": {}}, "contacts"),
])
def test_a_malformed_client_request_names_the_part(data: Any, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        split_client_input(data)
    assert refused.value.field == field


@pytest.mark.parametrize(("data", "expected"), [
    ({"manager_id": "12"}, {"manager_id": 12}), ({"manager_id": 7}, {"manager_id": 7}),
    ({"manager_id": ""}, {"manager_id": None}), ({"city": "  Нижний   Новгород "},
                                                  {"city": "Нижний Новгород"}),
])
def test_assignment_is_cleaned(data: dict[str, Any], expected: dict[str, Any]) -> None:
    assert validate_assignment(data) == expected


@pytest.mark.parametrize("manager", ["anna", -1, 0, True, 1.5, "1e3"])
def test_a_manager_must_be_a_user_id(manager: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_assignment({"manager_id": manager})
    assert refused.value.field == "manager_id"


def test_a_contact_update_replaces_only_the_keys_given() -> None:
    current = {"name": "Пётр", "position": "директор", "phones": ["+79161234567"],
               "emails": []}
    assert merge_contact_update(current, {"phones": ["8 916 765-43-21"]}) == {
        "name": "Пётр", "position": "директор", "phones": ["+79167654321"], "emails": []}
    with pytest.raises(ValidationError) as refused:
        merge_contact_update(current, {"age": 40})
    assert refused.value.field == "age"


def test_a_client_exports_one_row_per_contact_and_imports_back() -> None:
    client = {"name": "ООО «Экспорт»", "kind": "legal", "website": "https://e.ru",
              "address": None, "requisites": {"name": None, "inn": "7707083893",
                                              "kpp": "773601001"},
              "contacts": [{"name": "Анна", "position": None, "phones": ["+79161234567"],
                            "emails": ["a@e.ru"]},
                           {"name": "Борис", "position": "юрист", "phones": [], "emails": []}]}
    rows = client_rows(client)
    assert [r["contact_name"] for r in rows] == ["Анна", "Борис"]
    back = preview(export_rows(rows, EXPORT_COLUMNS, "csv"))
    assert back.errors == []
    assert [r["contact"]["name"] for r in back.rows_ok] == ["Анна", "Борис"]
    assert back.rows_ok[0]["requisites"]["kpp"] == "773601001"


def test_a_person_without_contacts_exports_his_own_phone() -> None:
    person = {"name": "Иван Петров", "kind": "person", "website": None, "address": "Тверь",
              "requisites": {"full_name": "Иван Петров", "phone": "+79161234567",
                             "email": None, "address": None}, "contacts": []}
    [row] = client_rows(person)
    assert row["phone"] == "+79161234567" and "full_name" not in row
    [imported] = preview(export_rows([row], EXPORT_COLUMNS, "csv")).rows_ok
    assert imported["requisites"]["phone"] == "+79161234567"
