"""Client and contact rules: automatic names, input checks, history, duplicates, merging."""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.clients.domain.clients import (
    auto_name,
    diff_fields,
    duplicate_keys,
    merge_plan,
    normalize_website,
    validate_client_create,
    validate_client_update,
    validate_contact,
)
from services.kit.errors import ValidationError


def test_auto_name_carries_the_sequence_number_in_the_users_language() -> None:
    assert auto_name(1042) == "Клиент №1042"
    assert auto_name(1042, "ru") == "Клиент №1042"
    assert auto_name(7, "en") == "Client #7"


@pytest.mark.parametrize(("number", "lang", "field"), [
    (0, "ru", "sequence_number"), (-1, "ru", "sequence_number"),
    (True, "ru", "sequence_number"), ("5", "ru", "sequence_number"), (5, "de", "lang"),
])
def test_auto_name_refuses_bad_arguments(number: Any, lang: str, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        auto_name(number, lang)
    assert exc.value.field == field


def test_new_client_without_a_name_is_left_for_auto_naming() -> None:
    assert validate_client_create({"kind": "legal"}) == {
        "name": None, "kind": "legal", "website": None, "address": None}


def test_new_client_fields_are_trimmed() -> None:
    cleaned = validate_client_create({"kind": "person", "name": "  Иван   Петров ",
                                      "website": "Example.RU", "address": " Москва "})
    assert cleaned == {"name": "Иван Петров", "kind": "person",
                       "website": "https://example.ru", "address": "Москва"}


@pytest.mark.parametrize(("data", "field"), [
    ({}, "kind"),
    ({"kind": "company"}, "kind"),
    ({"kind": "legal", "name": "x" * 256}, "name"),
    ({"kind": "legal", "name": 42}, "name"),
    ({"kind": "legal", "website": "ftp://example.ru"}, "website"),
    ({"kind": "legal", "inn": "7707083893"}, "inn"),  # requisites go elsewhere
])
def test_bad_new_client_input_names_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_client_create(data)
    assert exc.value.field == field


def test_update_returns_only_the_given_fields_and_keeps_a_name() -> None:
    assert validate_client_update({"website": " "}) == {"website": None}
    assert validate_client_update({"name": "Ромашка"}) == {"name": "Ромашка"}
    with pytest.raises(ValidationError) as exc:
        validate_client_update({"name": "   "})
    assert exc.value.field == "name"


@pytest.mark.parametrize(("raw", "url"), [
    ("example.ru", "https://example.ru"),
    ("https://Example.RU/", "https://example.ru"),
    ("HTTP://example.ru/about?x=1", "http://example.ru/about?x=1"),
    ("сайт.рф", "https://сайт.рф"),
    ("www.example.ru:8080/shop", "https://www.example.ru:8080/shop"),
    ("", None),
])
def test_website_becomes_a_clickable_https_url(raw: str, url: str | None) -> None:
    assert normalize_website(raw) == url


@pytest.mark.parametrize("raw", ["javascript:alert(1)", "ftp://example.ru", "example",
                                 "https://user:pw@example.ru", "exa mple.ru", "http://",
                                 "https://127.0.0.1", "https://example.ru:99999",
                                 "https://" + "a" * 2000 + ".ru"])
def test_bad_websites_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError) as exc:
        normalize_website(raw)
    assert exc.value.field == "website"


@given(st.text(max_size=60))
def test_random_website_is_a_url_or_a_validation_error(raw: str) -> None:
    try:
        url = normalize_website(raw)
    except ValidationError as exc:
        assert exc.field == "website"
    else:
        assert url is None or url.startswith(("http://", "https://"))


def test_diff_lists_changed_fields_in_order_with_old_and_new_values() -> None:
    old = {"name": "Ромашка", "website": None, "address": "Москва", "kind": "legal"}
    new = {"name": "Ромашка+", "website": "", "address": "Тверь", "kind": "legal",
           "inn": "7707083893"}
    assert diff_fields(old, new) == [("name", "Ромашка", "Ромашка+"),
                                     ("address", "Москва", "Тверь"),
                                     ("inn", None, "7707083893")]


def test_diff_of_a_cleared_field_records_the_old_value() -> None:
    assert diff_fields({"website": "https://a.ru"}, {"website": None}) == [
        ("website", "https://a.ru", None)]
    assert diff_fields({"phones": ["+79161234567"]}, {}) == [
        ("phones", ["+79161234567"], None)]


def test_diff_of_equal_records_is_empty() -> None:
    record = {"name": "A", "phones": ["+79161234567"], "address": None}
    assert diff_fields(record, dict(record)) == []
    assert diff_fields({"address": ""}, {"address": None}) == []


def test_contact_phones_are_normalised_and_deduplicated() -> None:
    contact = validate_contact({"name": " Иван ", "phones": [
        "8 916 123-45-67", "+79161234567", "", "+7 495 123-45-67 доб. 1",
        "+7 495 123-45-67 доб. 2"], "emails": ["Ivan@Firm.ru", "ivan@firm.ru"]})
    assert contact == {"name": "Иван", "position": None,
                       "phones": ["+79161234567", "+74951234567;ext=1",
                                  "+74951234567;ext=2"],
                       "emails": ["ivan@firm.ru"]}


def test_quick_form_takes_a_name_and_one_phone() -> None:
    contact = validate_contact({"name": "Иван", "phones": "8 916 123 45 67"}, quick=True)
    assert contact["phones"] == ["+79161234567"]


def test_quick_form_needs_a_way_to_reach_the_contact() -> None:
    with pytest.raises(ValidationError) as exc:
        validate_contact({"name": "Иван", "phones": [" "]}, quick=True)
    assert exc.value.field == "phones"
    assert validate_contact({"name": "Иван"})["phones"] == []  # a full form may add later


def test_a_contact_known_only_by_a_phone_is_named_by_it() -> None:
    contact = validate_contact({"phones": ["8 915 777-33-21"]})
    assert contact["name"] == "+79157773321" and contact["phones"] == ["+79157773321"]


@pytest.mark.parametrize(("data", "field"), [
    ({}, "name"),
    ({"name": "  "}, "name"),
    ({"name": "Иван", "phones": ["+79161234567", "12"]}, "phones.1"),
    ({"name": "Иван", "emails": ["ivan"]}, "emails.0"),
    ({"name": "Иван", "phones": {"work": "+79161234567"}}, "phones"),
    ({"name": "Иван", "phones": ["+79161234567"] * 21}, "phones"),
    ({"name": "Иван", "position": "x" * 256}, "position"),
    ({"name": "Иван", "skype": "ivan"}, "skype"),
])
def test_bad_contact_input_names_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_contact(data)
    assert exc.value.field == field


def test_duplicate_keys_are_the_inn_and_every_phone_without_extension() -> None:
    client = {"inn": " 7707083893 ", "name": "Сбербанк"}
    contacts: list[dict[str, Any]] = [{"phones": ["+79161234567", "+74951234567;ext=12"]},
                {"phones": ["8 916 123-45-67"]}, {"phones": None}]
    assert duplicate_keys(client, contacts) == {
        "inn:7707083893", "phone:+79161234567", "phone:+74951234567"}


def test_duplicate_keys_of_a_person_include_their_own_phone() -> None:
    assert duplicate_keys({"phone": "+79161234567"}, []) == {"phone:+79161234567"}


def test_a_broken_stored_phone_does_not_stop_duplicate_checks() -> None:
    assert duplicate_keys({"inn": None}, [{"phones": ["12", "+79161234567"]}]) == {
        "phone:+79161234567"}


def test_two_clients_sharing_a_phone_share_a_key() -> None:
    ours = duplicate_keys({"inn": "7707083893"}, [{"phones": ["+79161234567"]}])
    theirs = duplicate_keys({"inn": "7736207543"}, [{"phones": ["8 916 123 45 67"]}])
    assert ours & theirs == {"phone:+79161234567"}


def test_merge_keeps_the_survivors_values_and_fills_its_gaps() -> None:
    survivor = {"id": 1, "name": "Ромашка", "website": "", "address": None,
                "inn": "7707083893"}
    other = {"id": 2, "name": "ООО Ромашка", "website": "https://romashka.ru",
             "address": "Москва", "inn": "7736207543", "kpp": "773601001"}
    assert merge_plan(survivor, other) == {
        "id": 1, "name": "Ромашка", "website": "https://romashka.ru", "address": "Москва",
        "inn": "7707083893", "kpp": "773601001"}


def test_merge_history_is_the_diff_of_the_plan() -> None:
    survivor = {"name": "A", "address": None}
    plan = merge_plan(survivor, {"name": "B", "address": "Москва"})
    assert diff_fields(survivor, plan) == [("address", None, "Москва")]


@given(st.dictionaries(st.sampled_from("abcde"), st.one_of(st.none(), st.text(max_size=3))),
       st.dictionaries(st.sampled_from("abcde"), st.one_of(st.none(), st.text(max_size=3))))
def test_merge_never_overwrites_what_the_survivor_has(survivor: dict[str, Any],
                                                      other: dict[str, Any]) -> None:
    plan = merge_plan(survivor, other)
    assert set(plan) == set(survivor) | set(other)
    for key, value in survivor.items():
        if value and value.strip():
            assert plan[key] == value
