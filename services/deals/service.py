"""Deals service: deals, statuses, deal contacts (MISSION D1–D13)."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from services.deals import domain, models
from services.deals.models import Deal, DealContact, DealHistory, Status
from services.kit.dependencies import CallLog, Remote, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import Conflict, NotFound, ValidationError
from services.kit.service import HealthCheck


def status_dict(status: Status) -> dict[str, Any]:
    return {"id": status.id, "code": status.code, "name": status.name,
            "position": status.position, "color": status.color, "kind": status.kind}


def deal_dict(deal: Deal) -> dict[str, Any]:
    return {"id": deal.id, "name": deal.name, "client_id": deal.client_id,
            "status": status_dict(deal.status), "manager_id": deal.manager_id,
            "amount": deal.amount, "currency": deal.currency, "created_by": deal.created_by,
            "created_at": deal.created_at, "updated_at": deal.updated_at,
            "version": deal.version,
            "contacts": [{"contact_id": c.contact_id, "name": c.name, "phones": c.phones,
                          "is_main": c.is_main} for c in deal.contacts]}


class DealsService(HealthCheck):
    name = "deals"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    clients = Remote("clients")

    def _deal(self, deal_id: int, lock: bool = False) -> Deal:
        stmt = select(Deal).where(Deal.id == int(deal_id))
        deal = self.db.scalars(stmt.with_for_update(of=Deal) if lock else stmt).first()
        if deal is None:
            raise NotFound(f"deal {deal_id} not found", entity="deal", id=deal_id)
        return deal

    def _status(self, code: str) -> Status:
        status = self.db.scalars(select(Status).where(Status.code == code)).first()
        if status is None:
            raise ValidationError(f"status: unknown status '{code}'", field="status")
        return status

    @rpc
    def list_statuses(self) -> list[dict[str, Any]]:
        return [status_dict(s) for s in self.db.scalars(select(Status).order_by(Status.position))]

    @rpc
    def create_deal(self, data: dict[str, Any], user_id: int | None = None) -> dict[str, Any]:
        cleaned = domain.validate_new_deal(data)
        status = self._status(cleaned["status"])
        # Asking clients also proves the client exists (NotFound travels back typed).
        client_contacts = self.clients.list_contacts(cleaned["client_id"])
        deal = Deal(name=cleaned["name"], client_id=cleaned["client_id"], status=status,
                    manager_id=cleaned["manager_id"] or user_id, created_by=user_id,
                    amount=Decimal("0.00"))
        deal.contacts = [DealContact(**c) for c in domain.copied_contacts(client_contacts)]
        self.db.add(deal)
        self.db.flush()
        self.db.add(DealHistory(deal_id=deal.id, field="created", new_value=deal.name,
                                user_id=user_id))
        self.db.emit("deal_created", {"deal_id": deal.id, "name": deal.name,
                                      "client_id": deal.client_id, "manager_id": deal.manager_id,
                                      "status": status.code})
        return deal_dict(deal)

    @rpc
    def get_deal(self, deal_id: int) -> dict[str, Any]:
        return deal_dict(self._deal(deal_id))

    @rpc
    def list_deals(self, manager_id: int | None = None, status: str | None = None,
                   client_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(Deal).order_by(Deal.id.desc()).limit(min(int(limit), 500))
        if manager_id is not None:
            stmt = stmt.where(Deal.manager_id == int(manager_id))
        if client_id is not None:
            stmt = stmt.where(Deal.client_id == int(client_id))
        if status:
            stmt = stmt.where(Deal.status_id == self._status(status).id)
        return [deal_dict(d) for d in self.db.scalars(stmt).unique()]

    @rpc
    def change_status(self, deal_id: int, status: str, user_id: int | None = None,
                      version: int | None = None) -> dict[str, Any]:
        deal = self._deal(deal_id, lock=True)
        if not domain.check_version(deal.version, version):
            raise Conflict(f"deal {deal_id} was changed by someone else; reload it",
                           entity="deal", id=deal_id, version=deal.version)
        new = self._status(status)
        old = deal.status
        if new.id == old.id:
            return deal_dict(deal)
        deal.status = new
        deal.version += 1
        deal.closed_at = datetime.now(UTC) if new.kind != "open" else None
        self.db.add(DealHistory(deal_id=deal.id, field="status", old_value=old.code,
                                new_value=new.code, user_id=user_id))
        self.db.emit("deal_status_changed", {"deal_id": deal.id, "from_status": old.code,
                                             "to_status": new.code, "user_id": user_id,
                                             "manager_id": deal.manager_id})
        return deal_dict(deal)

    @rpc
    def open_deals_for_contact(self, contact_id: int) -> list[int]:
        stmt = (select(Deal.id).join(DealContact).join(Status)
                .where(DealContact.contact_id == int(contact_id), Status.kind == "open"))
        return list(self.db.scalars(stmt))

    @consumes("payments", "budget_changed")
    def on_budget_changed(self, event: Envelope) -> None:
        deal = self.db.scalars(select(Deal).where(Deal.id == int(event.data["deal_id"]))
                               .with_for_update(of=Deal)).first()
        if deal is None:
            raise NotFound(f"budget for unknown deal {event.data['deal_id']}")
        revision = int(event.data["revision"])
        if revision <= deal.budget_revision:
            return
        deal.budget_revision = revision
        budget = Decimal(event.data["budget"])
        if deal.amount != budget:
            self.db.add(DealHistory(deal_id=deal.id, field="amount", old_value=str(deal.amount),
                                    new_value=str(budget), user_id=event.data.get("user_id")))
            deal.amount = budget
