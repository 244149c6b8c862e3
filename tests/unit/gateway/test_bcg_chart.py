"""The BCG chart and export: points in their quadrant, names escaped, numbers as numbers."""
from __future__ import annotations

import io

from openpyxl import load_workbook

from gateway import bcg_chart

MATRIX = {"growth_threshold": "10", "rows": [
    {"key": "Станки", "sales": "500.00", "previous": "400.00", "share": "50.0",
     "relative_share": "2.00", "growth": "25.0", "quadrant": "star"},
    {"key": "<script>x</script>", "sales": "50.00", "previous": "60.00", "share": "5.0",
     "relative_share": "0.20", "growth": "-16.7", "quadrant": "dog"},
    {"key": "=1+1", "sales": "150.00", "previous": "0", "share": "15.0",
     "relative_share": "0.60", "growth": None, "quadrant": "question"}]}
WORDS = {"title": "Матрица", "x": "доля", "y": "рост", "star": "звёзды",
         "cash_cow": "дойные коровы", "question": "знаки вопроса", "dog": "собаки"}


def test_a_point_sits_in_its_quadrant():
    mid_x, mid_y = bcg_chart.WIDTH / 2, bcg_chart.HEIGHT / 2
    x, y = bcg_chart.position("2.00", "25.0", "10")      # star: right, above
    assert x > mid_x and y < mid_y
    x, y = bcg_chart.position("0.20", "-16.7", "10")     # dog: left, below
    assert x < mid_x and y > mid_y
    x, y = bcg_chart.position("1", "10", "10")           # the average line at the threshold
    assert (x, y) == (mid_x, mid_y)
    x, y = bcg_chart.position("0.6", None, "10")         # new: the top edge
    assert y == bcg_chart.PAD


def test_the_svg_names_the_four_quadrants_and_escapes_names():
    svg = str(bcg_chart.scatter_svg(MATRIX, WORDS))
    for name in ("звёзды", "дойные коровы", "знаки вопроса", "собаки"):
        assert f">{name}</text>" in svg
    assert "<script>" not in svg and "&lt;script&gt;x&lt;/script&gt;" in svg
    assert svg.count('class="bcg-point"') == 3


def test_the_export_keeps_numbers_and_text_as_text():
    data = bcg_chart.xlsx(MATRIX, ["k", "s", "p", "sh", "r", "g", "q"], "Период",
                          {"star": "звёзды", "dog": "собаки", "question": "знаки вопроса"})
    sheet = load_workbook(io.BytesIO(data)).active
    assert [c.value for c in sheet[4]] == ["Станки", 500, 400, 50, 2, 25, "звёзды"]
    assert sheet.cell(6, 1).value == "=1+1" and sheet.cell(6, 1).data_type == "s"
    assert sheet.cell(6, 6).value == "—"
