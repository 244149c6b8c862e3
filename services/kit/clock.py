"""The one clock of the product: ``now()`` (an aware moment, UTC unless a zone is asked)
and ``business_today(config)`` (the date where the business is: its ``TIMEZONE``, default
Europe/Moscow).  Nothing outside the kit reads the machine's clock or its local date
directly (tests/unit/test_clock_use.py), so "today", "overdue" and "due" mean the same
day in every service and on every page, whatever zone the server runs in."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "Europe/Moscow"


def now(tz: tzinfo = UTC) -> datetime:
    return datetime.now(tz)


def business_zone(config: Mapping[str, Any] | None = None) -> ZoneInfo:
    return ZoneInfo(str((config or {}).get("TIMEZONE") or DEFAULT_ZONE))


def business_today(config: Mapping[str, Any] | None = None) -> date:
    return now(business_zone(config)).date()
