"""The client list's requests (C4, C6) checked before any SQL: filters, sorting, paging,
the one search box, and the columns a user may choose."""
from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.clients.domain.listing import (
    PhoneQuery,
    parse_list_query,
    phone_query,
    search_text,
)
from services.kit.contract.clients import DEFAULT_COLUMNS, stored_columns, validate_columns
from services.kit.errors import ValidationError


def test_search_text_folds_case_yo_and_spaces() -> None:
    assert search_text("  ООО  «Фёдор»\tи ЁЖ ") == "ооо «федор» и еж"


@pytest.mark.parametrize(("typed", "expected"), [
    ("8 (916) 123-45-67", PhoneQuery("+79161234567", exact=True)),
    ("+7 495 123 45 67 доб. 12", PhoneQuery("+74951234567", exact=True)),
    ("123-45-67", PhoneQuery("1234567", exact=False)),
    ("8 (916", PhoneQuery("+7916", exact=False)),
    ("8 (9", None),
    ("8 (916) 12", PhoneQuery("+791612", exact=False)),
])
def test_a_typed_phone_becomes_an_exact_or_a_fragment_search(typed: str,
                                                             expected: PhoneQuery | None):
    assert phone_query(typed) == expected


def test_blank_filters_mean_not_filtered() -> None:
    q = parse_list_query("", {"name": "", "inn": " ", "manager_id": None, "kind": ""})
    assert (q.name, q.inn, q.manager_id, q.kind, q.text) == (None, None, None, None, None)
    assert (q.sort, q.descending, q.page, q.per_page) == ("name", False, 1, 50)


def test_filters_are_parsed_to_their_types() -> None:
    q = parse_list_query("", {
        "name": " Ромашка ", "inn": "7707 08", "phone": "8 916 123-45-67", "manager_id": "4",
        "kind": "legal", "city": "Санкт-Петербург", "created_from": "2026-01-01",
        "created_to": "2026-01-31", "neglected_days": "30", "no_open_reminder": "on"},
        sort="-last_contact_at", page="3", per_page="20", manager_order=["9", 7])
    assert q.name == "ромашка" and q.inn == "770708" and q.manager_id == 4
    assert q.phone == PhoneQuery("+79161234567", exact=True)
    assert (q.created_from, q.created_to) == (date(2026, 1, 1), date(2026, 1, 31))
    assert q.neglected_days == 30 and q.no_open_reminder is True
    assert (q.sort, q.descending, q.offset, q.per_page) == ("last_contact_at", True, 40, 20)
    assert q.manager_order == (9, 7)


def test_the_search_box_looks_for_a_name_and_also_an_inn_or_a_phone_when_it_can_be() -> None:
    words = parse_list_query("Ромашка")
    assert (words.text, words.text_inn, words.text_phone) == ("ромашка", None, None)
    digits = parse_list_query("7707083893")
    assert digits.text_inn == "7707083893" and digits.text_phone is not None
    phone = parse_list_query("+7 (916) 123-45-67")
    assert phone.text_inn is None and phone.text_phone == PhoneQuery("+79161234567", True)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"filters": {"created_from": "31.01.2026"}}, "created_from"),
    ({"filters": {"created_from": "2026-02-01", "created_to": "2026-01-01"}}, "created_to"),
    ({"filters": {"phone": "916"}}, "phone"),
    ({"filters": {"inn": "77-07"}}, "inn"),
    ({"filters": {"inn": "1234567890123"}}, "inn"),
    ({"filters": {"kind": "ooo"}}, "kind"),
    ({"filters": {"manager_id": "0"}}, "manager_id"),
    ({"filters": {"manager_id": True}}, "manager_id"),
    ({"filters": {"neglected_days": "-1"}}, "neglected_days"),
    ({"filters": {"neglected_days": "100000"}}, "neglected_days"),
    ({"filters": {"no_open_reminder": "maybe"}}, "no_open_reminder"),
    ({"filters": {"deleted": "1"}}, "deleted"),
    ({"filters": ["name"]}, "filters"),
    ({"sort": "password"}, "sort"),
    ({"page": "0"}, "page"),
    ({"per_page": "1000"}, "per_page"),
    ({"query": "x" * 201}, "q"),
    ({"manager_order": "1,2"}, "manager_order"),
])
def test_a_bad_list_request_names_what_is_wrong(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_list_query(**kwargs)
    assert refused.value.field == field


def test_chosen_columns_keep_their_order() -> None:
    assert validate_columns(["inn", "name", "phone"]) == ["inn", "name", "phone"]


@pytest.mark.parametrize("columns", [[], "name", ["name", "name"], ["name", "secret"],
                                     ["inn", "phone"]])
def test_bad_column_choices_are_refused(columns: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_columns(columns)
    assert refused.value.field == "columns"


def test_a_stored_choice_that_no_longer_fits_falls_back_to_the_default() -> None:
    assert stored_columns(None) == list(DEFAULT_COLUMNS)
    assert stored_columns(["name", "column_of_an_old_version"]) == list(DEFAULT_COLUMNS)
    assert stored_columns(["phone", "name"]) == ["phone", "name"]
