"""Rows of the deals database as the plain dicts the RPC API answers (README.md)."""
from __future__ import annotations

from typing import Any

from services.deals.models import (
    Calculation,
    Deal,
    DealContact,
    DealType,
    FeedEntry,
    LossReason,
    Order,
    Party,
    Reminder,
    Stage,
    Status,
)
from services.kit import clock

# The columns a kanban card or a table row needs: read without loading whole deals.
CARD_COLUMNS = (Deal.id, Deal.name, Deal.client_id, Deal.client_name, Deal.manager_id,
                Deal.amount, Deal.currency, Deal.status_id, Deal.stage_id, Deal.type_id,
                Deal.next_reminder_at, Deal.version, Deal.created_at, Deal.closed_at,
                Deal.planned_close_on)


def status_dict(status: Status) -> dict[str, Any]:
    return {"id": status.id, "code": status.code, "name": status.name,
            "position": status.position, "color": status.color, "kind": status.kind}


def stage_dict(stage: Stage) -> dict[str, Any]:
    return {"id": stage.id, "code": stage.code, "name": stage.name, "position": stage.position,
            "status_id": stage.status_id, "status": stage.status.code, "tasks": stage.tasks,
            "rules": stage.rules, "documents": stage.documents}


def type_dict(deal_type: DealType) -> dict[str, Any]:
    return {"id": deal_type.id, "name": deal_type.name, "description": deal_type.description,
            "simple": deal_type.simple, "documents": deal_type.documents,
            "position": deal_type.position, "active": deal_type.active,
            "stages": [stage_dict(s) for s in deal_type.stages]}


def reason_dict(reason: LossReason) -> dict[str, Any]:
    return {"id": reason.id, "name": reason.name, "position": reason.position,
            "active": reason.active}


def contact_dict(c: DealContact) -> dict[str, Any]:
    return {"contact_id": c.contact_id, "name": c.name, "position": c.position,
            "phones": c.phones, "emails": c.emails, "is_main": c.is_main,
            "added_by": c.added_by, "added_at": c.added_at}


def deal_dict(deal: Deal) -> dict[str, Any]:
    return {"id": deal.id, "name": deal.name, "client_id": deal.client_id,
            "client_name": deal.client_name, "status": status_dict(deal.status),
            "stage": ({"id": deal.stage.id, "code": deal.stage.code, "name": deal.stage.name}
                      if deal.stage else None),
            "type_id": deal.type_id, "manager_id": deal.manager_id, "amount": deal.amount,
            "expected_amount": deal.expected_amount, "budget": deal.budget, "paid": deal.paid,
            "outstanding": deal.outstanding, "has_plan": deal.budget_revision > 0,
            "currency": deal.currency, "loss_reason_id": deal.loss_reason_id,
            "loss_comment": deal.loss_comment, "next_reminder_at": deal.next_reminder_at,
            "created_by": deal.created_by, "created_at": deal.created_at,
            "updated_by": deal.updated_by, "updated_at": deal.updated_at,
            "closed_at": deal.closed_at, "version": deal.version,
            "probability": deal.probability, "planned_close_on": deal.planned_close_on,
            "source": deal.source, "source_detail": deal.source_detail,
            "contacts": [contact_dict(c) for c in deal.contacts]}


def card_dict(row: Any, status_codes: dict[int, str]) -> dict[str, Any]:
    card = dict(row._mapping)
    card["status"] = status_codes.get(card["status_id"])
    return card


def reminder_dict(r: Reminder, deal_name: str | None = None) -> dict[str, Any]:
    return {"id": r.id, "deal_id": r.deal_id, "deal_name": deal_name, "client_id": r.client_id,
            "assignee_id": r.assignee_id, "assignee_role": r.assignee_role, "text": r.text,
            "due_at": r.due_at, "source": r.source, "created_by": r.created_by,
            "created_at": r.created_at, "completed_at": r.completed_at,
            "completed_by": r.completed_by,
            "overdue": r.completed_at is None and r.due_at < clock.now()}


def feed_dict(e: FeedEntry) -> dict[str, Any]:
    return {"id": e.id, "kind": e.kind, "text": e.text, "attachments": e.attachments,
            "data": e.data, "author_id": e.author_id, "created_at": e.created_at}


def line_dict(line: Any) -> dict[str, Any]:
    return {"kind": line.kind, "name": line.name, "quantity": line.quantity,
            "unit_price": line.unit_price, "discount": line.discount, "amount": line.amount,
            "catalogue_id": line.catalogue_id, "product_line": line.product_line}


def order_dict(o: Order) -> dict[str, Any]:
    return {"id": o.id, "deal_id": o.deal_id, "number": o.number, "order_date": o.order_date,
            "status": o.status, "amount": o.amount, "currency": o.currency,
            "comment": o.comment, "lines": [line_dict(x) for x in o.lines],
            "created_by": o.created_by, "created_at": o.created_at, "version": o.version}


def calculation_dict(c: Calculation | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"total": c.total, "lines": [line_dict(x) for x in c.lines], "saved_by": c.saved_by,
            "saved_at": c.saved_at, "plan_created_at": c.plan_created_at, "version": c.version}


def party_dict(p: Party) -> dict[str, Any]:
    return {"id": p.id, "role": p.role, "client_id": p.client_id, "name": p.name,
            "note": p.note, "created_by": p.created_by, "created_at": p.created_at}
