"""The BCG matrix over our own sales: quadrants checked by hand."""
from __future__ import annotations

from decimal import Decimal as D

from services.analytics import bcg


def test_four_lines_land_in_the_four_quadrants():
    current = {"Станки": D("500"), "Инструмент": D("300"), "Сервис": D("150"), "Запчасти": D("50")}
    previous = {"Станки": D("400"), "Инструмент": D("330"), "Сервис": D("100"),
                "Запчасти": D("60")}
    rows = {r.key: r for r in bcg.matrix(current, previous)}
    # total 1000, four lines: the average share is 25 %
    # Станки 50 %, +25 %: star; Инструмент 30 %, −9.1 %: cash cow;
    # Сервис 15 %, +50 %: question mark; Запчасти 5 %, −16.7 %: dog
    assert [(k, r.share, r.relative_share, r.growth, r.quadrant) for k, r in rows.items()] == [
        ("Станки", D("50.0"), D("2.00"), D("25.0"), "star"),
        ("Инструмент", D("30.0"), D("1.20"), D("-9.1"), "cash_cow"),
        ("Сервис", D("15.0"), D("0.60"), D("50.0"), "question"),
        ("Запчасти", D("5.0"), D("0.20"), D("-16.7"), "dog")]


def test_a_line_new_in_the_period_grows_from_nothing_and_nothing_divides_by_zero():
    rows = bcg.matrix({"Новинка": D("10"), "Старое": D("90")}, {"Старое": D("90")})
    by = {r.key: r for r in rows}
    assert by["Новинка"].growth is None and by["Новинка"].quadrant == "question"
    assert by["Старое"].growth == D("0.0") and by["Старое"].quadrant == "cash_cow"


def test_the_growth_threshold_is_a_parameter():
    rows = bcg.matrix({"A": D("110"), "B": D("90")}, {"A": D("100"), "B": D("100")},
                      growth_threshold=D("5"))
    assert [(r.key, r.quadrant) for r in rows] == [("A", "star"), ("B", "dog")]


def test_no_sales_no_rows():
    assert bcg.matrix({}, {"A": D("5")}) == []
    assert bcg.matrix({"A": D("0")}, {}) == []
