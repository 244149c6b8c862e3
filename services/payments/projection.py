"""Entry points that keep this service's view of deals and clients (``deal_refs``,
``client_refs``) from the events deals and clients publish: who the client of a deal is
(its INN matches bank payments) and who manages it (overdue notices, the forecast)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.kit.db import table_of
from services.kit.entrypoints import consumes
from services.kit.envelope import Envelope
from services.payments.domain import new_values
from services.payments.domain.matching import canonical_inn
from services.payments.models import ClientRef, DealRef

DEAL_FIELDS = ("name", "client_id", "manager_id", "status")
CLIENT_FIELDS = ("name", "inn", "manager_id")


def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _status(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("code")
    return None if value is None else str(value)[:40]


def _inn(value: Any) -> str | None:
    return canonical_inn(str(value)) or None if value else None


class ProjectionEntrypoints:
    db: Any
    config: Any

    def _upsert_deal(self, deal_id: int, values: dict[str, Any], version: int | None) -> None:
        row = {"deal_id": deal_id, "updated_at": func.now()}
        if "name" in values:
            row["name"] = values["name"]
        if "client_id" in values:
            row["client_id"] = _int(values["client_id"])
        if "manager_id" in values:
            row["manager_id"] = _int(values["manager_id"])
        if "status" in values:
            row["status"] = _status(values["status"])
        table = table_of(DealRef)
        stmt = pg_insert(table).values(**row, version=version or 0)
        changes = {k: getattr(stmt.excluded, k) for k in row if k != "deal_id"}
        if version is not None:
            changes["version"] = stmt.excluded.version
            stmt = stmt.on_conflict_do_update(index_elements=[table.c.deal_id], set_=changes,
                                              where=table.c.version < version)
        else:
            stmt = stmt.on_conflict_do_update(index_elements=[table.c.deal_id], set_=changes)
        self.db.execute(stmt)

    @consumes("deals", "deal_created")
    def on_deal_created(self, event: Envelope) -> None:
        data = event.data
        values = {k: data.get(k) for k in DEAL_FIELDS}
        # a creation is version 1: it never overwrites an update that arrived first
        self._upsert_deal(int(data["deal_id"]), values, 1)

    @consumes("deals", "deal_updated")
    def on_deal_updated(self, event: Envelope) -> None:
        data = event.data
        values = new_values(data, DEAL_FIELDS)
        if values:
            self._upsert_deal(int(data["deal_id"]), values, _int(data.get("version")))

    def _upsert_client(self, client_id: int, values: dict[str, Any]) -> None:
        row: dict[str, Any] = {"client_id": client_id, "updated_at": func.now()}
        if "name" in values:
            row["name"] = values["name"]
        if "inn" in values:
            row["inn"] = _inn(values["inn"])
        if "manager_id" in values:
            row["manager_id"] = _int(values["manager_id"])
        table = table_of(ClientRef)
        stmt = pg_insert(table).values(**row)
        self.db.execute(stmt.on_conflict_do_update(
            index_elements=[table.c.client_id],
            set_={k: getattr(stmt.excluded, k) for k in row if k != "client_id"}))

    @consumes("clients", "client_created")
    def on_client_created(self, event: Envelope) -> None:
        data = event.data
        self._upsert_client(int(data["client_id"]), {k: data.get(k) for k in CLIENT_FIELDS})

    @consumes("clients", "client_updated")
    def on_client_updated(self, event: Envelope) -> None:
        data = event.data
        values = new_values(data, CLIENT_FIELDS)
        if values:
            self._upsert_client(int(data["client_id"]), values)

    @consumes("clients", "client_merged")
    def on_client_merged(self, event: Envelope) -> None:
        survivor, merged = int(event.data["survivor_id"]), int(event.data["merged_id"])
        self.db.execute(update(DealRef).where(DealRef.client_id == merged)
                        .values(client_id=survivor, updated_at=func.now()))
        self._upsert_client(merged, {})
        self.db.execute(update(ClientRef).where(ClientRef.client_id == merged)
                        .values(merged_into=survivor))
