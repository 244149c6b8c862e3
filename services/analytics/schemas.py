"""Rows as the RPC contract returns them (the shapes named in README.md)."""
from __future__ import annotations

from typing import Any

from services.analytics import loyalty
from services.analytics.models import RfmHistory, RfmScore


def score_dict(s: RfmScore) -> dict[str, Any]:
    return {"client_id": s.client_id, "segment": s.segment,
            "segment_name": loyalty.SEGMENTS.get(s.segment, s.segment), "r": s.r, "f": s.f,
            "m": s.m, "recency_days": s.recency_days, "payments": s.payments,
            "amount": s.amount, "last_paid_on": s.last_paid_on, "computed_at": s.computed_at}


def segment_move_dict(h: RfmHistory) -> dict[str, Any]:
    return {"previous": h.previous, "segment": h.segment, "changed_at": h.changed_at}
