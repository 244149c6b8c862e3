"""The rebuild writes COPY's text format itself: values that would break a line or a
column are escaped as PostgreSQL reads them back."""
from datetime import UTC, datetime
from decimal import Decimal

from services.analytics.store import _copy_value


def test_text_with_tabs_newlines_and_backslashes_stays_one_column():
    assert _copy_value("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re"


def test_null_numbers_and_moments():
    assert _copy_value(None) == "\\N"
    assert _copy_value(Decimal("1500.00")) == "1500.00" and _copy_value(7) == "7"
    moment = datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC)
    assert _copy_value(moment) == "2026-01-02T03:04:05.000600+00:00"


def test_arrays_quote_each_element_and_keep_nulls():
    assert _copy_value(["new", "won"]) == '{"new","won"}'
    assert _copy_value([1.5, None]) == '{"1.5",NULL}'
    # a quote and a backslash inside an element: escaped for the array, then for COPY
    assert _copy_value(['a"b\\c']) == '{"a\\\\"b\\\\\\\\c"}'


def test_a_page_column_is_escaped_whole_when_one_value_needs_it():
    from services.analytics.rebuild_store import _copy_column

    assert _copy_column(["a", None, "b"]) == ["a", "\\N", "b"]
    assert _copy_column(["a", "b\tc", None]) == ["a", "b\\tc", "\\N"]
    assert _copy_column([1, None, 30]) == ["1", "\\N", "30"]
    assert _copy_column([None, None]) == ["\\N", "\\N"]
    assert _copy_column([True, "x\\y"]) == ["t", "x\\\\y"]
