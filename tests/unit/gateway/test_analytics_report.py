"""The funnel's drawing and workbook: names from people are escaped, the bottleneck is red,
sheet names are valid for Excel."""
import io

import openpyxl

from gateway import analytics_report as charts


def row(code, name, reached, bottleneck=()):
    return {"code": code, "name": name, "reached": reached, "amount": "10.00",
            "conversion_next": "50.0", "conversion_first": "100.0", "drop_off": 1,
            "median_days": "2.0", "lost": 0, "now_count": 1, "now_amount": "10.00",
            "bottleneck": list(bottleneck), "color": "#5b8def"}


def test_names_in_the_funnel_svg_are_escaped_and_the_bottleneck_is_red():
    svg = charts.funnel_svg([row("new", "<script>alert(1)</script>", 4),
                             row("talks", "Переговоры", 2, ["lowest"])],
                            link=lambda code: f"/analytics/layers/{code}?a=1&b=2")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'fill="#dc2626"' in svg and "a=1&amp;b=2" in svg


def test_workbook_sheet_titles_are_valid_and_unique():
    book = openpyxl.load_workbook(io.BytesIO(charts.xlsx(
        {"layers": [row("a", "Договор/оплата: этап [1]", 2),
                    row("b", "Договор/оплата: этап [1]", 1)]},
        "слова", {}, {}, lambda i: f"/deals/{i}", {})))
    assert book.sheetnames == ["Воронка", "Договор_оплата_ этап _1_", "Договор_оплата_ этап _1_ 2"]
    assert book["Воронка"].cell(5, 2).value == 2
