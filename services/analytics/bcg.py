"""The BCG matrix over our own sales (MISSION A7): each product line (or deal type) by its
share inside OUR sales — not market share, which the CRM cannot know — against its growth
period over period.  Pure."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from services.kit import parse
from services.kit.errors import ValidationError

QUADRANTS: dict[str, str] = {
    "star": "звёзды",
    "cash_cow": "дойные коровы",
    "question": "знаки вопроса",
    "dog": "собаки",
}
DEFAULT_GROWTH_POINTS = Decimal("10")
ZERO = Decimal("0")
HUNDRED = Decimal("100")
_POINT = Decimal("0.1")


@dataclass(frozen=True)
class Row:
    key: str
    sales: Decimal
    previous: Decimal
    share: Decimal            # percent of our sales in the period
    relative_share: Decimal   # share against the average line's share (1 = average)
    growth: Decimal | None    # percent against the previous period; None: nothing before
    quadrant: str


def quadrant(high_share: bool, high_growth: bool) -> str:
    if high_share:
        return "star" if high_growth else "cash_cow"
    return "question" if high_growth else "dog"


def matrix(current: Mapping[str, Decimal], previous: Mapping[str, Decimal],
           growth_threshold: Decimal = DEFAULT_GROWTH_POINTS) -> list[Row]:
    """Rows for every line sold in the period, biggest first.

    Share is high when a line sells at least as much as the average of our lines (relative
    share ≥ 1: among n lines, a share of at least 1/n).  Growth is high when it reaches
    ``growth_threshold`` percent; a line that sold nothing before grows from nothing: high."""
    sold = {k: v for k, v in current.items() if v > ZERO}
    total = sum(sold.values(), ZERO)
    if total <= ZERO:
        return []
    n = Decimal(len(sold))
    rows = []
    for key, sales in sold.items():
        before = previous.get(key, ZERO)
        share = sales / total * HUNDRED
        relative = sales * n / total
        growth = None if before <= ZERO else (sales - before) / before * HUNDRED
        high_growth = growth is None or growth >= growth_threshold
        rows.append(Row(key, sales, before, share.quantize(_POINT, ROUND_HALF_UP),
                        relative.quantize(Decimal("0.01"), ROUND_HALF_UP),
                        None if growth is None else growth.quantize(_POINT, ROUND_HALF_UP),
                        quadrant(relative >= 1, high_growth)))
    return sorted(rows, key=lambda r: (-r.sales, r.key))


def growth_threshold(value: object) -> Decimal:
    """The growth (percent) from which a line counts as growing; default 10."""
    if value is None or value == "":
        return DEFAULT_GROWTH_POINTS
    points = parse.money(value, "growth", allow_negative=True)
    if not Decimal(-100) <= points <= Decimal(10000):
        raise ValidationError("Порог роста: от −100 до 10000 %.", "growth",
                              key="bcg.growth_range", params={"min": -100, "max": 10000})
    return points
