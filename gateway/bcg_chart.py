"""The BCG matrix drawn on the server: an SVG scatter (share inside our sales against
growth) with the four quadrants named, and its XLSX export.  Pure: the analytics answer
in, markup or bytes out.  Every product line or deal type name is escaped."""
from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import xlsxwriter
from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 640, 420, 56
QUADRANT_COLORS = {"star": "#f59e0b", "cash_cow": "#10b981", "question": "#6366f1",
                   "dog": "#9ca3af"}
# where each quadrant's name sits: (high share?, high growth?) -> corner
_CORNERS = {"question": (False, True), "star": (True, True), "dog": (False, False),
            "cash_cow": (True, False)}
GROWTH_SPAN = Decimal("100")  # the vertical axis shows growth from -100 % to +100 % ...
MAX_RELATIVE = Decimal("3")   # ... and relative share 0..3 (beyond: on the edge)


def _d(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal("0")


def position(relative_share: Any, growth: Any, threshold: Any) -> tuple[float, float]:
    """The point of a line: x from its relative share (1 = the average line, the middle),
    y from its growth (the threshold in the middle; no growth figure: the top edge)."""
    rel = min(max(_d(relative_share), Decimal(0)), MAX_RELATIVE)
    # relative share 0..1 fills the left half, 1..MAX the right half
    fx = rel / 2 if rel <= 1 else Decimal("0.5") + (rel - 1) / (MAX_RELATIVE - 1) / 2
    if growth is None:
        fy = Decimal(1)
    else:
        delta = _d(growth) - _d(threshold)
        fy = Decimal("0.5") + max(min(delta / GROWTH_SPAN, Decimal(1)), Decimal(-1)) / 2
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    return (float(PAD + fx * inner_w), float(HEIGHT - PAD - fy * inner_h))


def scatter_svg(matrix: Mapping[str, Any], words: Mapping[str, str]) -> Markup:
    """``words``: title, x, y (axis captions) and the quadrant names by code."""
    mid_x, mid_y = WIDTH / 2, HEIGHT / 2
    left, top, right, bottom = PAD, PAD, WIDTH - PAD, HEIGHT - PAD
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bcg-chart" role="img" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">',
             f'<title>{escape(words.get("title", ""))}</title>']
    for code, (high_share, high_growth) in _CORNERS.items():
        x = mid_x if high_share else left
        y = top if high_growth else mid_y
        parts.append(f'<rect class="quadrant quadrant-{code}" x="{x}" y="{y}" '
                     f'width="{mid_x - left}" height="{mid_y - top}" '
                     f'fill="{QUADRANT_COLORS[code]}" fill-opacity="0.08"/>')
        parts.append(f'<text class="quadrant-name" data-quadrant="{code}" x="{x + 8}" '
                     f'y="{y + 18}" font-size="13" font-weight="bold" '
                     f'fill="{QUADRANT_COLORS[code]}">{escape(words.get(code, code))}</text>')
    parts.append(f'<line x1="{mid_x}" y1="{top}" x2="{mid_x}" y2="{bottom}" stroke="#6b7280" '
                 f'stroke-dasharray="4 3"/><line x1="{left}" y1="{mid_y}" x2="{right}" '
                 f'y2="{mid_y}" stroke="#6b7280" stroke-dasharray="4 3"/>'
                 f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
                 f'fill="none" stroke="#9ca3af"/>')
    parts.append(f'<text x="{mid_x}" y="{HEIGHT - 16}" text-anchor="middle" font-size="12">'
                 f'{escape(words.get("x", ""))}</text>'
                 f'<text x="16" y="{mid_y}" text-anchor="middle" font-size="12" '
                 f'transform="rotate(-90 16 {mid_y})">{escape(words.get("y", ""))}</text>')
    rows: Sequence[Mapping[str, Any]] = matrix.get("rows") or []
    biggest = max((_d(r["sales"]) for r in rows), default=Decimal(1)) or Decimal(1)
    for row in rows:
        x, y = position(row["relative_share"], row.get("growth"), matrix["growth_threshold"])
        radius = 6 + 18 * float((_d(row["sales"]) / biggest).sqrt())
        color = QUADRANT_COLORS.get(str(row["quadrant"]), "#6b7280")
        parts.append(f'<g class="bcg-point" data-key="{escape(row["key"])}" '
                     f'data-quadrant="{escape(row["quadrant"])}">'
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="{color}" '
                     f'fill-opacity="0.55" stroke="{color}"/>'
                     f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="11">'
                     f'{escape(row["key"])}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


def xlsx(matrix: Mapping[str, Any], headers: Sequence[str], caption: str,
         quadrant_names: Mapping[str, str]) -> bytes:
    """The table behind the chart, numbers as numbers (money with two decimals)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("BCG")
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "#,##0.00"})
    point = book.add_format({"num_format": "0.0"})
    sheet.write(0, 0, caption, bold)
    for col, title in enumerate(headers):
        sheet.write(2, col, title, bold)
    for i, row in enumerate(matrix.get("rows") or [], start=3):
        sheet.write_string(i, 0, str(row["key"]))
        sheet.write_number(i, 1, float(_d(row["sales"])), money)
        sheet.write_number(i, 2, float(_d(row["previous"])), money)
        sheet.write_number(i, 3, float(_d(row["share"])), point)
        sheet.write_number(i, 4, float(_d(row["relative_share"])))
        if row.get("growth") is None:
            sheet.write_string(i, 5, "—")
        else:
            sheet.write_number(i, 5, float(_d(row["growth"])), point)
        sheet.write_string(i, 6, quadrant_names.get(str(row["quadrant"]), str(row["quadrant"])))
    sheet.set_column(0, 0, 32)
    sheet.set_column(1, 6, 16)
    book.close()
    return buffer.getvalue()
