"""Phone and e-mail normalisation, and what a phone search looks for."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.clients.domain.phones import normalize_email, normalize_phone, phone_search_key
from services.kit.errors import ValidationError


@pytest.mark.parametrize("raw", ["8 916 123-45-67", "+7 (916) 1234567", "9161234567",
                                 "8-916-123-45-67", "+79161234567", " 8(916)123 45 67 ",
                                 "7 916 123 45 67"])
def test_one_mobile_number_typed_many_ways_is_one_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+79161234567"


@pytest.mark.parametrize("raw", ["+7 495 123-45-67 доб. 123", "+7 495 123-45-67 ext. 123",
                                 "8 (495) 123-45-67 (доб. 123)", "84951234567#123",
                                 "+7 495 123-45-67 x123", "+74951234567;ext=123"])
def test_extension_is_kept_after_the_e164_number(raw: str) -> None:
    assert normalize_phone(raw) == "+74951234567;ext=123"


@pytest.mark.parametrize(("raw", "expected"), [
    ("+380 44 123 4567", "+380441234567"),  # foreign number with its own code
    ("8 10 49 30 1234567", "+49301234567"),  # dialled through the Russian 8-10 prefix
    ("8 800 555-35-35", "+78005553535"),
    ("+7 7172 123456", "+77172123456"),  # Kazakhstan shares +7
])
def test_numbers_of_other_countries_and_services(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


def test_national_number_of_another_region() -> None:
    assert normalize_phone("030 1234567", region="DE") == "+49301234567"


@pytest.mark.parametrize("raw", ["", "   ", "123", "+7 916 123", "8 916 123-45-67-89",
                                 "телефон", "+7 (000) 000-00-00", "1" * 200])
def test_invalid_numbers_are_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(ValidationError) as exc:
        normalize_phone(raw)
    assert exc.value.field == "phone"


def test_field_name_can_be_a_path_into_a_list() -> None:
    with pytest.raises(ValidationError) as exc:
        normalize_phone("12", field="phones.2")
    assert exc.value.field == "phones.2"


def test_non_text_phone_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        normalize_phone(79161234567)
    assert refused.value.key == "text.invalid" and "Нужен текст" in refused.value.message


@pytest.mark.parametrize(("typed", "key"), [
    ("8 916 123-45-67", "+79161234567"),  # full number, any format -> exact E.164
    ("+7 (495) 123-45-67 доб. 5", "+74951234567"),  # extension dropped
    ("123-45-67", "1234567"),  # the end of a number
    ("8 (916", "+7916"),  # the start, typed with the trunk prefix
    ("8-916-12", "+791612"),
    ("+7 916 1", "+79161"),
    ("4567", "4567"),
    ("8916", "8916"),  # no separator after 8: could be any four digits
    ("916", None),  # too few digits to search
    ("", None),
    ("Иванов", None),
])
def test_phone_search_key(typed: str, key: str | None) -> None:
    assert phone_search_key(typed) == key


def test_search_key_is_a_substring_of_the_stored_number() -> None:
    stored = normalize_phone("+7 495 123-45-67 доб. 5")
    for typed in ("8 495 123 45 67", "123-45-67", "8 (495) 12", "+7 495"):
        key = phone_search_key(typed)
        assert key is not None and key in stored


@pytest.mark.parametrize(("raw", "expected"), [
    ("ivan@example.ru", "ivan@example.ru"),
    ("  Ivan.Petrov@Example.COM ", "ivan.petrov@example.com"),
    ("sales+crm@firm.co.uk", "sales+crm@firm.co.uk"),
    ("иван@почта.рф", "иван@почта.рф"),
    ("info@xn--80ak6aa92e.xn--p1ai", "info@xn--80ak6aa92e.xn--p1ai"),
])
def test_valid_emails_are_trimmed_and_lower_cased(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "ivan", "ivan@", "@example.ru", "ivan@example",
                                 "ivan@@example.ru", "iv an@example.ru", "ivan..p@example.ru",
                                 ".ivan@example.ru", "ivan@-example.ru", "ivan@example.r",
                                 "ivan@example.ru.", "ivan@exa_mple.ru", "ivan@example.123",
                                 "a" * 65 + "@example.ru", "ivan@" + "a" * 250 + ".ru"])
def test_invalid_emails_are_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(ValidationError) as exc:
        normalize_email(raw)
    assert exc.value.field == "email"


@given(st.text(max_size=60))
def test_random_text_is_a_phone_or_a_validation_error(raw: str) -> None:
    try:
        phone = normalize_phone(raw)
    except ValidationError as exc:
        assert exc.field == "phone"
    else:
        assert phone.startswith("+")
        assert normalize_phone(phone) == phone  # the stored form reads back unchanged


@given(st.from_regex(r"\+?[78]?[ (-]{0,2}9[0-9]{2}[) -]{0,2}[0-9]{3}[ -]?[0-9]{2}[ -]?[0-9]{2}",
                     fullmatch=True))
def test_typed_mobile_numbers_normalise_idempotently(raw: str) -> None:
    try:
        phone = normalize_phone(raw)
    except ValidationError:
        return  # e.g. "+8 9..." is another country's number, or an unassigned range
    assert normalize_phone(phone) == phone


@given(st.text(max_size=60))
def test_random_text_never_breaks_the_search(raw: str) -> None:
    key = phone_search_key(raw)
    assert key is None or len(key.lstrip("+")) >= 4


@given(st.text(max_size=80))
def test_random_text_is_an_email_or_a_validation_error(raw: str) -> None:
    try:
        email = normalize_email(raw)
    except ValidationError as exc:
        assert exc.field == "email"
    else:
        assert normalize_email(email) == email
