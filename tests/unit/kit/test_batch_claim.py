"""The batch consumer's inbox claim, without a database: what it writes and returns."""
from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql

from services.kit.batch import claim_all
from services.kit.envelope import Envelope
from services.notifications import models


class OneStatement:
    """Takes the claim's statement and answers as PostgreSQL would for ``claimed`` ids."""

    def __init__(self, claimed: set[str]) -> None:
        self.claimed = claimed
        self.written: list[str] = []

    def execute(self, stmt: Any) -> list[tuple[str]]:
        params = stmt.compile(dialect=postgresql.dialect()).params
        self.written = [v for k, v in sorted(params.items(), key=lambda kv: _position(kv[0]))
                        if k.startswith("event_id")]
        return [(e,) for e in self.written if e in self.claimed]


def _position(name: str) -> int:
    suffix = name.rsplit("_m", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0


def events(*ids: str) -> list[Envelope]:
    return [Envelope(i, "thing_happened", 1, "2026-01-01T00:00:00+00:00", {}) for i in ids]


def test_the_rows_are_written_in_event_id_order_and_each_event_once():
    # two batches sharing events lock their inbox keys in one order: no deadlock
    ids = ["c0000000-0000-0000-0000-000000000000", "a0000000-0000-0000-0000-000000000000",
           "b0000000-0000-0000-0000-000000000000"]
    session = OneStatement(claimed=set(ids))
    fresh = claim_all(session, models.inbox, "svc.on_things", events(*ids, ids[0]))
    assert session.written == sorted(ids)
    assert [e.event_id for e in fresh] == ids, "the handler gets delivery order, each once"


def test_an_event_applied_before_is_left_out():
    ids = ["b0000000-0000-0000-0000-000000000000", "a0000000-0000-0000-0000-000000000000"]
    session = OneStatement(claimed={ids[0]})
    assert [e.event_id for e in claim_all(session, models.inbox, "h", events(*ids))] == [ids[0]]
    assert claim_all(session, models.inbox, "h", []) == []
