"""Idempotent RPC: a call that carries ``idempotency_key`` runs once per key.

A caller that retries a write after a timeout or a crash (the gateway relaying an API
client's ``Idempotency-Key``) sends the same key; the first call's result is recorded in
the same transaction as its effect, so a repeat gets that result back and changes
nothing.  A concurrent repeat waits on the row's lock until the first commits.  A service
opts in by adding the table to its metadata (``idempotency_table(metadata)``)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Column, DateTime, MetaData, String, Table, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session

KWARG = "idempotency_key"
KEY_MAX = 300
KEEP_HOURS = 48  # the gateway keeps API keys 24 h; a repeat later than that is a new call


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotent_calls", metadata,
        Column("key", String(KEY_MAX), primary_key=True),
        Column("method", String(100), primary_key=True),
        Column("result", JSONB),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now(),
               index=True),
    )


def claim(session: Session, table: Table, key: str, method: str) -> tuple[bool, Any]:
    """``(True, result)`` when this key already ran, else ``(False, None)`` with the key
    claimed in the caller's transaction."""
    inserted = session.execute(insert(table).values(key=key, method=method)
                               .on_conflict_do_nothing().returning(table.c.key)).first()
    if inserted is not None:
        return False, None
    stored = session.execute(select(table.c.result).where(table.c.key == key,
                                                          table.c.method == method)).first()
    return True, stored.result if stored is not None else None


def remember(session: Session, table: Table, key: str, method: str, result: Any) -> None:
    session.execute(table.update().where(table.c.key == key, table.c.method == method)
                    .values(result=result))
