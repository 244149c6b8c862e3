"""The RFM segments analytics announces (``analytics.client_segments_changed``): checking
an event before the clients' ``rfm_segment`` column takes it.  Pure."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.clients.domain.inputs import event_time
from services.kit.errors import ValidationError
from services.kit.parse import identifier

MAX_CHANGES = 1_000  # analytics splits a recomputation into events of at most this many
# a segment is analytics' code ("at_risk"): the list filters by it, analytics names it
SEGMENT_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class SegmentChanges:
    computed_at: datetime
    segments: dict[int, str | None]  # client id -> its segment (None: out of any)


def segment_code(value: object, field: str = "segment") -> str:
    if not isinstance(value, str) or not SEGMENT_CODE.fullmatch(value):
        raise ValidationError("Нет такого сегмента.", field=field, key="segment.invalid",
                              params={"value": str(value)[:40]})
    return value


def segment_changes(data: Mapping[str, Any]) -> SegmentChanges:
    """The event's changes, one per client (a client named twice keeps its last)."""
    computed_at = event_time(data.get("computed_at"), "computed_at")
    changes = data.get("changes")
    if not isinstance(changes, list) or len(changes) > MAX_CHANGES:
        raise ValidationError(f"changes: a list of at most {MAX_CHANGES}", field="changes",
                              key="list.too_long", params={"max": MAX_CHANGES})
    segments: dict[int, str | None] = {}
    for i, change in enumerate(changes):
        if not isinstance(change, Mapping):
            raise ValidationError("Ожидается объект.", field=f"changes.{i}",
                                  key="object.invalid")
        client_id = identifier(change.get("client_id"), f"changes.{i}.client_id")
        segment = change.get("segment")
        segments[client_id] = (None if segment is None
                               else segment_code(segment, f"changes.{i}.segment"))
    return SegmentChanges(computed_at, segments)
