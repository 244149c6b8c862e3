"""Money is Decimal in code and a string in JSON; never a float.

Parsing lives in ``services.kit.parse.money``; this module keeps the names services use."""
from __future__ import annotations

from services.kit.parse import CENT, MAX_AMOUNT, money_str
from services.kit.parse import money as parse_money

__all__ = ["CENT", "MAX_AMOUNT", "money_str", "parse_money"]
