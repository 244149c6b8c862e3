"""The funnel drawn and exported: a server-side SVG (the page and the PDF share it), the PDF
(WeasyPrint, A4 landscape) and the Excel workbook (XlsxWriter, native chart).

Every text that came from people (status, deal and client names, loss reasons) is escaped
before it reaches SVG or HTML."""
from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from gateway.formatting import chart_money, figure

BOTTLENECK_COLOR = "#dc2626"
WIDTH, ROW, GAP, LABEL = 760, 46, 6, 250
FONT = "DejaVu Sans, Arial, sans-serif"


def pct(value: Any) -> str:
    return "—" if value in (None, "") else f"{value}".replace(".", ",") + "%"


def _open(css: str, height: int, font_size: int, title: str, linked: bool) -> str:
    """The chart's opening tag and its name for screen readers.  A chart whose parts are
    links is a group of links, not one image (an image's children are not reachable)."""
    role = "group" if linked else "img"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{css}" role="{role}" '
            f'aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
            f'height="{height}" font-family="{FONT}" font-size="{font_size}">'
            f'<title>{escape(title)}</title>')


def funnel_svg(layers: Sequence[Mapping[str, Any]],
               link: Callable[[str], str] | None = None, words: Mapping[str, str] | None = None
               ) -> Markup:
    """The funnel: one centred bar per layer, its width in proportion to the deals that
    reached it; a bottleneck layer in red with the reason in words."""
    words = words or {}
    top = max((int(r["reached"]) for r in layers), default=0) or 1
    height = len(layers) * (ROW + GAP) + GAP
    span = WIDTH - LABEL - 20
    parts = [_open("funnel-chart", height, 13, words.get("title", "Воронка продаж"),
                   linked=link is not None)]
    for i, row in enumerate(layers):
        y = GAP + i * (ROW + GAP)
        bar = max(4.0, span * int(row["reached"]) / top)
        x = LABEL + (span - bar) / 2
        hot = bool(row.get("bottleneck"))
        color = BOTTLENECK_COLOR if hot else escape(row.get("color") or "#5b8def")
        label = f'{row["name"]}'
        figures = f'{row["reached"]} · {chart_money(row["amount"])} ₽'
        css = "layer bottleneck" if hot else "layer"
        item = [f'<g class="{css}" data-layer="{escape(row["code"])}">',
                f'<rect x="{x:.1f}" y="{y}" width="{bar:.1f}" height="{ROW}" rx="4" '
                f'fill="{color}" fill-opacity="{0.95 if hot else 0.8}"/>',
                f'<text x="{LABEL - 10}" y="{y + 19}" text-anchor="end" font-weight="bold" '
                f'fill="{BOTTLENECK_COLOR if hot else "#1f2937"}">{escape(label)}</text>',
                f'<text x="{LABEL - 10}" y="{y + 37}" text-anchor="end" fill="#4b5563" '
                f'font-size="12">{escape(figures)}</text>',
                f'<text x="{LABEL + span / 2:.1f}" y="{y + 28}" text-anchor="middle" '
                f'fill="#ffffff" font-weight="bold">{escape(str(row["reached"]))}</text>']
        if row.get("conversion_next") is not None:
            item.append(f'<text x="{WIDTH - 6}" y="{y + 28}" text-anchor="end" '
                        f'fill="{BOTTLENECK_COLOR if hot else "#374151"}" font-size="12">'
                        f'→ {escape(pct(row["conversion_next"]))}</text>')
        item.append("</g>")
        if link is not None:
            item = [f'<a href="{escape(link(str(row["code"])))}">', *item, "</a>"]
        parts.extend(item)
    parts.append("</svg>")
    return Markup("".join(parts))


def bars_svg(rows: Sequence[Mapping[str, Any]], label: Callable[[Mapping[str, Any]], str],
             link: Callable[[Mapping[str, Any]], str] | None = None, title: str = "") -> Markup:
    """Horizontal bars (lost deals by status and reason), longest = most deals."""
    top = max((int(r["count"]) for r in rows), default=0) or 1
    height = len(rows) * 30 + 10
    parts = [_open("bars-chart", height, 12, title, linked=link is not None)]
    for i, row in enumerate(rows):
        y = 6 + i * 30
        bar = max(3.0, (WIDTH - LABEL - 160) * int(row["count"]) / top)
        item = [f'<text x="{LABEL - 8}" y="{y + 16}" text-anchor="end" fill="#1f2937">'
                f'{escape(label(row))}</text>',
                f'<rect x="{LABEL}" y="{y}" width="{bar:.1f}" height="22" rx="3" '
                f'fill="{BOTTLENECK_COLOR}" fill-opacity="0.75"/>',
                f'<text x="{LABEL + bar + 6:.1f}" y="{y + 16}" fill="#374151">'
                f'{escape(str(row["count"]))} · {escape(chart_money(row["amount"]))} ₽</text>']
        if link is not None:
            item = [f'<a href="{escape(link(row))}">', *item, "</a>"]
        parts.extend(item)
    parts.append("</svg>")
    return Markup("".join(parts))


def pdf(html: str) -> bytes:
    """The funnel page for print: A4 landscape, fonts embedded (DejaVu has Cyrillic)."""
    from weasyprint import HTML

    return bytes(HTML(string=html).write_pdf())


COLUMNS = ("Этап", "Дошли", "Сумма, ₽", "Конверсия в следующий, %", "Конверсия от первого, %",
           "Отвал", "Медиана дней", "Проиграно на этапе", "Сейчас на этапе",
           "Сумма сейчас, ₽", "Узкое место")
DEAL_COLUMNS = ("Сделка", "Клиент", "Менеджер", "Сумма, ₽", "Дней в статусе", "Ссылка")


def xlsx(funnel: Mapping[str, Any], filter_words: str, layer_deals: Mapping[str, Any],
         managers: Mapping[int, str], deal_url: Callable[[int], str],
         words: Mapping[str, str]) -> bytes:
    """The funnel table with a native bar chart (category axis reversed: the first layer
    on top, a funnel), numbers as numbers, money formatted, and a sheet of deals per
    layer."""
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "# ##0.00"})
    pct_fmt = book.add_format({"num_format": "0.0"})
    red = book.add_format({"bold": True, "font_color": BOTTLENECK_COLOR})
    sheet = book.add_worksheet("Воронка")
    sheet.write(0, 0, "Воронка продаж", bold)
    sheet.write(1, 0, filter_words)
    sheet.write_row(3, 0, COLUMNS, bold)
    rows = funnel["layers"]
    for i, row in enumerate(rows, start=4):
        sheet.write_string(i, 0, str(row["name"]))
        sheet.write_number(i, 1, int(row["reached"]))
        sheet.write_number(i, 2, float(figure(row["amount"])), money)
        for col, key in ((3, "conversion_next"), (4, "conversion_first")):
            if row.get(key) is not None:
                sheet.write_number(i, col, float(figure(row[key])), pct_fmt)
        sheet.write_number(i, 5, int(row["drop_off"]))
        if row.get("median_days") is not None:
            sheet.write_number(i, 6, float(figure(row["median_days"])), pct_fmt)
        sheet.write_number(i, 7, int(row["lost"]))
        sheet.write_number(i, 8, int(row["now_count"]))
        sheet.write_number(i, 9, float(figure(row["now_amount"])), money)
        if row.get("bottleneck"):
            sheet.write_string(i, 10, ", ".join(words.get(b, b) for b in row["bottleneck"]),
                               red)
    sheet.set_column(0, 0, 26)
    sheet.set_column(1, 10, 14)
    if rows:
        chart = book.add_chart({"type": "bar"})
        last = 3 + len(rows)
        chart.add_series({"name": "Дошли", "categories": ["Воронка", 4, 0, last, 0],
                          "values": ["Воронка", 4, 1, last, 1],
                          "data_labels": {"value": True}, "fill": {"color": "#5b8def"}})
        chart.set_title({"name": "Воронка продаж"})
        chart.set_y_axis({"reverse": True})  # the bar chart's category axis: first on top
        chart.set_legend({"none": True})
        sheet.insert_chart(last + 2, 0, chart, {"x_scale": 1.6, "y_scale": 1.3})
    used: set[str] = {"Воронка"}
    for row in rows:
        title = _sheet_title(str(row["name"]), used)
        deals = book.add_worksheet(title)
        deals.write_row(0, 0, DEAL_COLUMNS, bold)
        for j, deal in enumerate(layer_deals.get(row["code"], []), start=1):
            deals.write_string(j, 0, str(deal["name"]))
            deals.write_string(j, 1, str(deal.get("client_name") or ""))
            deals.write_string(j, 2, managers.get(deal.get("manager_id") or 0, ""))
            deals.write_number(j, 3, float(figure(deal["amount"])), money)
            if deal.get("days_in_status") is not None:
                deals.write_number(j, 4, float(figure(deal["days_in_status"])), pct_fmt)
            deals.write_url(j, 5, deal_url(int(deal["deal_id"])), string="Открыть")
        deals.set_column(0, 2, 28)
        deals.set_column(3, 5, 14)
    book.close()
    return out.getvalue()


def _sheet_title(name: str, used: set[str]) -> str:
    """Excel sheet names: ≤ 31 characters, none of []:*?/\\ and unique."""
    clean = "".join("_" if c in '[]:*?/\\' else c for c in name)[:28] or "Этап"
    title, n = clean, 2
    while title in used:
        title, n = f"{clean[:26]} {n}", n + 1
    used.add(title)
    return title
