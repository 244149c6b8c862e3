"""The edge parsers: what each refuses, with which field and key, and what it accepts."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from nameko.exceptions import serialize

from services.kit import parse
from services.kit.errors import ValidationError, error_from_reply


def refused(parser, *args, **kwargs) -> tuple[str | None, str | None]:
    with pytest.raises(ValidationError) as error:
        parser(*args, **kwargs)
    return error.value.field, error.value.key


@pytest.mark.parametrize("raw, expected", [(12, 12), ("12", 12), (" 7 ", 7),
                                           (2**63 - 1, 2**63 - 1)])
def test_ids_from_json_and_forms(raw, expected):
    assert parse.identifier(raw, "deal_id") == expected


@pytest.mark.parametrize("raw, key", [
    ("abc", "id.invalid"), ("1e3", "id.invalid"), (1e3, "id.invalid"), (True, "id.invalid"),
    (0, "id.invalid"), (-4, "id.invalid"), ("-4", "id.invalid"), ("12.0", "id.invalid"),
    (2**63, "id.too_large"), (str(2**64), "id.too_large"), (10**40, "id.too_large"),
    ("9" * 400, "id.invalid"), (None, "required"), ("", "required"), ([1], "id.invalid")])
def test_ids_refused_name_the_field(raw, key):
    assert refused(parse.identifier, raw, "client_id") == ("client_id", key)


def test_optional_id_absent_is_none():
    assert parse.identifier(None, "type_id", required=False) is None


@pytest.mark.parametrize("raw, key", [("abc", "version.invalid"), (True, "version.invalid"),
                                      (1.5, "version.invalid"), (2**64, "version.invalid")])
def test_versions_are_whole_numbers(raw, key):
    assert refused(parse.version, raw) == ("version", key)
    assert parse.version("3") == 3 and parse.version(None) is None


@pytest.mark.parametrize("raw, key", [("a\x00b", "text.nul"), ("a\ud800b", "text.surrogate"),
                                      (5, "text.invalid"), ("   ", "required"),
                                      ("x" * 11, "text.too_long")])
def test_text_refuses_what_no_column_holds(raw, key):
    assert refused(parse.text, raw, "name", limit=10) == ("name", key)


def test_text_is_stripped_and_too_long_says_the_limit():
    assert parse.text("  Ромашка ", "name") == "Ромашка"
    with pytest.raises(ValidationError) as error:
        parse.text("x" * 11, "name", limit=10)
    assert error.value.params == {"max": 10, "length": 11}
    assert parse.optional_text("  ", "comment") is None


def test_dates_and_moments():
    assert parse.day("2026-01-31", "due_date") == date(2026, 1, 31)
    assert parse.day(datetime(2026, 1, 31, 5, tzinfo=UTC), "d") == date(2026, 1, 31)
    assert refused(parse.day, "31.01.2026", "due_date") == ("due_date", "date.invalid")
    assert refused(parse.day, "2026-01-31\x00", "due_date") == ("due_date", "text.nul")
    moscow = timezone(timedelta(hours=3))
    assert parse.moment("2026-01-31T12:00", "due_at", moscow) == \
        datetime(2026, 1, 31, 9, tzinfo=UTC)
    assert refused(parse.moment, "soon", "due_at") == ("due_at", "datetime.invalid")
    assert refused(parse.moment, "1" * 500, "due_at") == ("due_at", "datetime.invalid")


@pytest.mark.parametrize("raw, expected", [("1 234,50", "1234.50"), ("1\u00a0000", "1000.00"),
                                           (7, "7.00"), (Decimal("999999999999.99"),
                                                         "999999999999.99")])
def test_money_accepts_what_people_type(raw, expected):
    assert parse.money(raw) == Decimal(expected)


@pytest.mark.parametrize("raw, key", [
    ("1e28", "money.invalid"), ("1e309", "money.invalid"), ("NaN", "money.invalid"),
    ("inf", "money.invalid"), ("-Infinity", "money.invalid"), (Decimal("1e28"), "money.too_large"),
    (Decimal("NaN"), "money.invalid"), (10**30, "money.too_large"),
    ("1000000000000.00", "money.too_large"), ("1.005", "money.places"),
    (1.5, "money.float"), (float("inf"), "money.float"), ("-1", "money.negative"),
    ("сто тысяч", "money.invalid"), (None, "required")])
def test_money_refuses_beyond_numeric_18_2(raw, key):
    assert refused(parse.money, raw, "amount") == ("amount", key)


def test_choice():
    assert parse.choice(" goods ", "kind", ("goods", "service")) == "goods"
    with pytest.raises(ValidationError) as error:
        parse.choice("food", "kind", ("goods", "service"))
    assert error.value.key == "choice.invalid"
    assert error.value.params == {"value": "food", "options": "goods, service"}


def test_several_errors_travel_together_through_nameko_with_their_types():
    errors = parse.Collector()
    errors.check(parse.text, "", "name")
    errors.check(parse.money, "abc", "amount")
    errors.check(parse.text, "x" * 600, "comment")
    with pytest.raises(ValidationError) as error:
        errors.raise_any()
    rebuilt = error_from_reply(serialize(error.value))
    assert isinstance(rebuilt, ValidationError)
    assert [(e["field"], e["key"]) for e in rebuilt.errors] == [
        ("name", "required"), ("amount", "money.invalid"), ("comment", "text.too_long")]
    assert rebuilt.errors[2]["params"] == {"max": 500, "length": 600}  # still numbers
    assert (rebuilt.field, rebuilt.key) == ("name", "required")


def test_details_added_after_raising_still_travel():
    exc = ValidationError("строка 3", "amount", key="money.invalid", params={"value": "x"})
    exc.details["file"] = "statement.txt"
    rebuilt = error_from_reply(serialize(exc))
    assert rebuilt.details["file"] == "statement.txt" and rebuilt.params == {"value": "x"}


def test_prefixed_errors_name_the_nested_field():
    inner = ValidationError("x", "phones.1", key="phone.invalid")
    assert inner.prefixed("contacts.0").errors[0]["field"] == "contacts.0.phones.1"
