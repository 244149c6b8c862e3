"""The shapes intake answers with (its README lists them)."""
from __future__ import annotations

from typing import Any

from services.intake.domain import SOURCE_NAMES
from services.intake.models import ApiKey, Form, Lead, Mailbox


def lead_dict(lead: Lead) -> dict[str, Any]:
    return {"id": lead.id, "source": lead.source,
            "source_name": lead.source_name or SOURCE_NAMES.get(lead.source, lead.source),
            "source_ref": lead.source_ref, "external_id": lead.external_id,
            "received_at": lead.received_at, "name": lead.name, "phone": lead.phone,
            "phone_e164": lead.phone_e164, "email": lead.email, "company": lead.company,
            "inn": lead.inn, "message": lead.message, "extra": lead.extra or {},
            "attachments": lead.attachments or [], "utm": lead.utm or {},
            "page_url": lead.page_url, "referrer": lead.referrer,
            "consent_version": lead.consent_version,
            "consent_text": lead.consent_text, "status": lead.status,
            "reject_reason": lead.reject_reason, "duplicates": lead.duplicates,
            "assignee_id": lead.assignee_id, "respond_by": lead.respond_by,
            "escalated_at": lead.escalated_at, "client_id": lead.client_id,
            "contact_id": lead.contact_id, "deal_id": lead.deal_id,
            "decided_by": lead.decided_by, "decided_at": lead.decided_at,
            "accept_error": lead.accept_error}


def form_dict(form: Form) -> dict[str, Any]:
    return {"id": form.id, "public_id": form.public_id, "name": form.name,
            "fields": form.fields, "consent_text": form.consent_text,
            "consent_version": form.consent_version, "assignee_ids": list(form.assignee_ids),
            "min_fill_seconds": form.min_fill_seconds,
            "allowed_origins": list(form.allowed_origins), "active": form.active,
            "created_at": form.created_at}


def public_form_dict(form: Form) -> dict[str, Any]:
    """What the website's script may know: no assignees, no origins."""
    return {"public_id": form.public_id, "name": form.name,
            "fields": [{k: f[k] for k in ("name", "label", "type", "required")}
                       for f in form.fields],
            "consent_text": form.consent_text, "consent_version": form.consent_version}


def key_dict(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "prefix": key.prefix,
            "assignee_ids": list(key.assignee_ids), "created_at": key.created_at,
            "revoked_at": key.revoked_at, "last_used_at": key.last_used_at}


def mailbox_dict(box: Mailbox) -> dict[str, Any]:
    """A mailbox for the admin page: never its password, only whether one is stored."""
    return {"id": box.id, "name": box.name, "host": box.host, "port": box.port,
            "security": box.security, "login": box.login, "has_password": bool(box.password_enc),
            "folder": box.folder, "move_to": box.move_to,
            "interval_seconds": box.interval_seconds, "user_id": box.user_id,
            "active": box.active, "last_polled_at": box.last_polled_at,
            "next_poll_at": box.next_poll_at, "last_error": box.last_error,
            "taken": box.taken, "created_at": box.created_at}
