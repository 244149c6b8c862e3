"""The event envelope every service publishes: ``event_id``, ``type``, ``version``,
``occurred_at``, ``data``.  Consumers accept the versions they know and ignore unknown
fields."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from services.kit.errors import ValidationError

_PLAIN = frozenset({str, int, float, bool, type(None)})


def json_safe(value: Any) -> Any:
    """Turn domain values into JSON: Decimal and UUID as strings, dates as ISO 8601.

    Every RPC answer passes through here (a board of 140 cards is some 2,500 values), so
    the common shapes go first by exact type — a plain value as it is, a dict's plain
    values without a call of their own — and anything else (subclasses included) takes
    ``_converted``'s general path, which gives what it always gave."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {(k if type(k) is str else str(k)): (v if type(v) in _PLAIN else json_safe(v))
                for k, v in value.items()}
    if kind is list:
        # a long column of plain values (a history page) is copied, not walked value by value
        return [v if type(v) in _PLAIN else json_safe(v) for v in value]
    return _converted(value)


def _converted(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


@dataclass(frozen=True)
class Envelope:
    event_id: str
    type: str
    version: int
    occurred_at: str
    data: dict[str, Any]

    @classmethod
    def new(cls, type_: str, data: dict[str, Any], version: int = 1) -> Envelope:
        return cls(str(uuid.uuid4()), type_, version, datetime.now(UTC).isoformat(),
                   json_safe(data))

    @classmethod
    def parse(cls, body: Any) -> Envelope:
        if not isinstance(body, dict):
            raise ValidationError("Тело события должно быть объектом.", field="event",
                                  key="event.body")
        try:
            event_id = str(uuid.UUID(str(body["event_id"])))
            return cls(event_id, str(body["type"]), int(body["version"]),
                       str(body["occurred_at"]), dict(body["data"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"Конверт события не разобрать: {exc}", field="event",
                                  key="event.envelope", params={"reason": str(exc)}) from None

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "type": self.type, "version": self.version,
                "occurred_at": self.occurred_at, "data": self.data}
