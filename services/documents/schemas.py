"""The contract of documents: what RPC results and event payloads carry."""
from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from services.documents import domain, questionnaires
from services.documents.models import (
    Document,
    LinkAction,
    Questionnaire,
    QuestionnaireTemplate,
    Template,
)
from services.kit.errors import NotFound


def template_dict(t: Template, with_body: bool = True) -> dict[str, Any]:
    out = {"id": t.id, "kind": t.kind, "name": t.name, "deal_type_id": t.deal_type_id,
           "active": t.active, "version": t.version, "updated_by": t.updated_by,
           "updated_at": t.updated_at, "format": t.format or "html"}
    if with_body:
        out["body"] = t.body
    return out


def document_dict(d: Document, now: datetime) -> dict[str, Any]:
    """A document as the manager sees it (the link's token included: the manager sends it)."""
    return {"id": d.id, "kind": d.kind, "number": d.number, "year": d.year, "title": d.title,
            "deal_id": d.deal_id, "deal_name": d.deal_name, "client_id": d.client_id,
            "manager_id": d.manager_id, "contact": d.contact, "template_id": d.template_id,
            "template_version": d.template_version, "amount": d.amount,
            "currency": d.currency, "status": d.status, "pdf_sha256": d.pdf_sha256,
            "token": d.token, "link_state": domain.link_state(d.revoked_at, d.expires_at, now),
            "expires_at": d.expires_at, "revoked_at": d.revoked_at, "views": d.views,
            "decided_at": d.decided_at, "decline_comment": d.decline_comment,
            "signature": d.signature, "planned_payment_id": d.planned_payment_id,
            "paid_amount": d.paid_amount, "paid_at": d.paid_at, "created_by": d.created_by,
            "created_at": d.created_at,
            "has_pdf": d.pdf is not None, "has_docx": d.docx is not None}


def event_facts(d: Document) -> dict[str, Any]:
    """What every document event carries (no token: events are logged and fanned out)."""
    return {"document_id": d.id, "deal_id": d.deal_id, "deal_name": d.deal_name,
            "client_id": d.client_id, "manager_id": d.manager_id, "kind": d.kind,
            "number": d.number, "title": d.title, "name": d.title, "status": d.status}


def questionnaire_template_dict(t: QuestionnaireTemplate) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "fields": t.fields, "active": t.active,
            "version": t.version, "updated_by": t.updated_by, "updated_at": t.updated_at}


def questionnaire_dict(q: Questionnaire) -> dict[str, Any]:
    return {"id": q.id, "template_id": q.template_id, "name": q.name, "fields": q.fields,
            "deal_id": q.deal_id, "deal_name": q.deal_name, "client_id": q.client_id,
            "manager_id": q.manager_id, "token": q.token, "status": q.status,
            "answers": q.answers,
            "summary": questionnaires.summary(q.fields, q.answers or {}),
            "draft_saved_at": q.draft_saved_at, "submitted_at": q.submitted_at,
            "created_by": q.created_by, "created_at": q.created_at}


def action_dict(a: LinkAction) -> dict[str, Any]:
    return {"action": a.action, "ip": a.ip, "user_agent": a.user_agent, "comment": a.comment,
            "at": a.at}


def file_dict(document: Document, what: str) -> dict[str, Any]:
    """The document's PDF or DOCX for download; NotFound when it has none (an HTML
    template makes no DOCX; a DOCX one makes no PDF where LibreOffice is not installed)."""
    content = document.pdf if what == "pdf" else document.docx
    if content is None:
        raise NotFound(f"document {document.id} {what}", entity="document", id=document.id,
                       key=f"document.no_{what}")
    return {"filename": f"{document.kind}-{document.year}-{document.number}.{what}",
            "content_b64": base64.b64encode(content).decode()}


def public_dict(document: Document, state: str) -> dict[str, Any]:
    """What the client's link page shows: only its state once the link is no longer active."""
    out: dict[str, Any] = {"state": state, "kind": document.kind, "title": document.title,
                           "manager_id": document.manager_id, "deal_name": document.deal_name}
    if state == "active":
        out.update(status=document.status, html=document.html,
                   has_pdf=document.pdf is not None, has_docx=document.docx is not None,
                   amount=document.amount, currency=document.currency,
                   decline_comment=document.decline_comment,
                   signed=document.signature is not None,
                   signed_at=(document.signature or {}).get("signed_at"),
                   can_sign=bool(document.contact.get("email")
                                 or document.contact.get("phone")),
                   contact_name=document.contact.get("name"),
                   paid=document.paid_at is not None,
                   can_pay_online=(document.kind == "invoice"
                                   and document.planned_payment_id is not None
                                   and document.paid_at is None))
    return out


def questionnaire_page(q: Questionnaire) -> dict[str, Any]:
    """The client's questionnaire page: the questions and the draft, or the answers."""
    return {"name": q.name, "fields": q.fields, "status": q.status, "draft": q.draft or {},
            "answers": q.answers, "summary": questionnaires.summary(q.fields, q.answers or {}),
            "manager_id": q.manager_id, "submitted_at": q.submitted_at}
