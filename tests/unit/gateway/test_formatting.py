"""The one formatting layer: every value a page or an export shows, one way."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway import formatting as f

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # 15:00 in Moscow
S = "\u202f"


def test_a_moment_is_shown_in_the_company_zone_the_same_way_everywhere():
    assert f.format_datetime("2026-12-02T18:30:00+00:00", MSK) == "02.12.2026 21:30"
    assert f.format_datetime("2026-12-02T18:30:00", MSK) == "02.12.2026 21:30"  # naive is UTC
    assert f.format_datetime(None, MSK) == ""


def test_a_day_is_shown_as_dd_mm_yyyy_and_a_late_moment_lands_on_the_local_day():
    assert f.format_date("2026-12-01", MSK) == "01.12.2026"
    assert f.format_date("2026-12-01T22:30:00+00:00", MSK) == "02.12.2026"
    assert f.format_date("", MSK) == ""


@pytest.mark.parametrize(("moment", "lang", "expected"), [
    ("2026-12-02T12:00:30+00:00", "ru", "только что"),
    ("2026-12-02T14:00:00+00:00", "ru", "через 2 часа"),
    ("2026-12-02T11:55:00+00:00", "ru", "5 минут назад"),
    ("2026-12-02T11:39:00+00:00", "ru", "21 минуту назад"),
    ("2026-12-01T09:00:00+00:00", "ru", "вчера, 12:00"),
    ("2026-12-03T09:00:00+00:00", "ru", "завтра, 12:00"),
    ("2026-12-06T09:00:00+00:00", "ru", "через 4 дня"),
    ("2026-11-27T09:00:00+00:00", "ru", "5 дней назад"),
    ("2026-10-01T09:00:00+00:00", "ru", "01.10.2026 12:00"),
    ("2026-12-02T14:00:00+00:00", "en", "in 2 hours"),
    ("2026-12-01T09:00:00+00:00", "en", "yesterday, 12:00"),
])
def test_relative_times_read_as_people_say_them(moment, lang, expected):
    assert f.relative(moment, MSK, lang, now=NOW) == expected


def test_russian_plurals_take_the_right_form():
    forms = ("час", "часа", "часов")
    assert [f.plural(n, forms, "ru") for n in (1, 2, 5, 11, 21, 22, 112)] == [
        "час", "часа", "часов", "часов", "час", "часа", "часов"]


def test_a_time_tag_carries_the_exact_moment_for_hover_and_machines():
    tag = str(f.time_tag("2026-12-02T14:00:00+00:00", MSK, "ru", now=NOW))
    assert tag == ('<time datetime="2026-12-02T17:00:00+03:00" title="02.12.2026 17:00">'
                   "через 2 часа</time>")


def test_past_moments_and_days_are_overdue():
    assert f.is_past("2026-12-02T11:59:00+00:00", now=NOW)
    assert not f.is_past("2026-12-02T12:01:00+00:00", now=NOW)
    assert f.is_past("2026-12-01", now=NOW) and not f.is_past("2026-12-02", now=NOW)
    assert not f.is_past(None, now=NOW)


def test_money_groups_thousands_with_a_comma_and_the_currency_sign():
    assert f.money("120000.5") == f"120{S}000,50{S}₽"
    assert f.money("-1234567") == f"-1{S}234{S}567,00{S}₽"
    assert f.money("10", "USD") == f"10,00{S}$"
    assert f.money("10", "GBP") == f"10,00{S}GBP"
    assert f.money(None) == "—"
    assert f.amount("0.5") == "0,50"


def test_quantities_and_prices_lose_their_trailing_zeros():
    assert f.number("10.000") == "10"
    assert f.number("85000.00") == f"85{S}000"
    assert f.number("2.500") == "2,5"
    assert f.plain_number("10.000") == "10" and f.plain_number("85000.50") == "85000.5"


def test_phones_are_written_the_russian_way_with_an_extension():
    assert f.phone("+79157773321") == "+7 915 777-33-21"
    assert f.phone("+74951234567;ext=12") == "+7 495 123-45-67 доб. 12"
    assert f.phone("") == ""
    assert f.phone("not a phone") == "not a phone"


def test_call_durations_are_minutes_and_seconds():
    assert f.duration(180) == "3:00"
    assert f.duration(65) == "1:05"
    assert f.duration(3725) == "1:02:05"
    assert f.duration(None) == ""


def test_the_users_zone_wins_over_the_companys_and_a_bad_one_is_ignored():
    assert f.zone_of("Asia/Yekaterinburg", "Europe/Moscow") == ZoneInfo("Asia/Yekaterinburg")
    assert f.zone_of(None, "Europe/Kaliningrad") == ZoneInfo("Europe/Kaliningrad")
    assert f.zone_of("Mars/Base", None) == MSK


def test_the_relative_hint_beside_an_exact_time_never_repeats_the_date():
    assert f.relative_hint("2026-12-02T14:00:00+00:00", MSK, "ru", now=NOW) == "(через 2 часа)"
    assert f.relative_hint("2026-10-01T09:00:00+00:00", MSK, "ru", now=NOW) == ""
    assert f.relative_hint(None, MSK, "ru", now=NOW) == ""


def test_a_chart_shows_an_absent_sum_as_zero_and_groups_the_rest():
    from decimal import Decimal

    from gateway.formatting import chart_money, figure
    assert chart_money("1234567.5") == "1\u202f234\u202f567,50"
    assert chart_money("-1234.5") == "-1\u202f234,50"
    assert chart_money(None) == chart_money("") == "0,00"
    assert figure(None) == 0 and figure("12.30") == Decimal("12.30")


def test_a_time_typed_into_a_form_is_meant_in_the_zone_the_page_showed():
    from flask import Flask, g

    with Flask(__name__).test_request_context("/"):
        g.zone = ZoneInfo("Asia/Yekaterinburg")  # the user's own zone, chosen in the profile
        assert f.typed_moment("2030-05-07T09:30") == "2030-05-07T09:30:00+05:00"
        g.zone = MSK
        assert f.typed_moment("2030-05-07T09:30") == "2030-05-07T09:30:00+03:00"
        # a time with its zone, an empty field and junk go on as they came
        assert f.typed_moment("2030-05-07T09:30:00+00:00") == "2030-05-07T09:30:00+00:00"
        assert f.typed_moment("") == ""
        assert f.typed_moment(None) is None
        assert f.typed_moment("завтра") == "завтра"
