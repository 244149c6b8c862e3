"""Telephony service: call records from the PBX, matched to contacts (MISSION T1–T4)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from services.kit.dependencies import CallLog, Remote, UnitOfWork
from services.kit.entrypoints import rpc
from services.kit.service import HealthCheck
from services.telephony import domain, models
from services.telephony.models import Call


def call_dict(call: Call) -> dict[str, Any]:
    return {"id": call.id, "provider": call.provider, "provider_call_id": call.provider_call_id,
            "direction": call.direction, "our_line": call.our_line,
            "other_number": call.other_number, "other_e164": call.other_e164,
            "started_at": call.started_at, "answered_at": call.answered_at,
            "ended_at": call.ended_at, "duration_seconds": call.duration_seconds,
            "outcome": call.outcome, "recording_ref": call.recording_ref,
            "contact_id": call.contact_id, "client_id": call.client_id,
            "deal_ids": list(call.deal_ids or [])}


class TelephonyService(HealthCheck):
    name = "telephony"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    clients = Remote("clients")
    deals = Remote("deals")

    def _attribute(self, record: dict[str, Any]) -> dict[str, Any]:
        """T2: match the other party to a contact, and that contact's open deals."""
        contact = self.clients.find_contact_by_phone(record["other_number"])
        if contact is None:
            return {"contact_id": None, "client_id": None, "deal_ids": []}
        return {"contact_id": contact["id"], "client_id": contact["client_id"],
                "deal_ids": self.deals.open_deals_for_contact(contact["id"])}

    @rpc
    def record_call(self, data: dict[str, Any]) -> dict[str, Any]:
        record = domain.call_from_input(data)
        record.update(self._attribute(record))
        inserted = self.db.execute(insert(Call).values(**record).on_conflict_do_nothing()
                                   .returning(Call.id)).first()
        call = self.db.scalars(select(Call).where(
            Call.provider == record["provider"],
            Call.provider_call_id == record["provider_call_id"])).one()
        if inserted is not None:  # a repeated report of the same call changes nothing
            self.db.emit("call_finished", call_dict(call))
        return call_dict(call)

    @rpc
    def list_calls(self, deal_id: int | None = None, client_id: int | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(Call).order_by(Call.started_at.desc()).limit(min(int(limit), 500))
        if deal_id is not None:
            stmt = stmt.where(Call.deal_ids.contains([int(deal_id)]))
        if client_id is not None:
            stmt = stmt.where(Call.client_id == int(client_id))
        return [call_dict(c) for c in self.db.scalars(stmt)]
