"""Rows of the clients database as the plain dicts the RPC API answers (README.md)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from services.clients.models import Client, ClientComment, ClientHistory, Contact


def contact_dict(contact: Contact) -> dict[str, Any]:
    return {"id": contact.id, "client_id": contact.client_id, "name": contact.name,
            "position": contact.position, "phones": [p.e164 for p in contact.phones],
            "emails": [e.email for e in contact.emails]}


def client_dict(client: Client, with_contacts: bool = True) -> dict[str, Any]:
    data = {"id": client.id, "number": client.number, "kind": client.kind, "name": client.name,
            "inn": client.inn, "requisites": client.requisites or {}, "address": client.address,
            "city": client.city, "website": client.website, "manager_id": client.manager_id,
            "created_by": client.created_by, "created_at": client.created_at,
            "updated_by": client.updated_by, "updated_at": client.updated_at,
            "last_contact_at": client.last_contact_at, "merged_into": client.merged_into,
            "client_group_id": client.client_group_id, "version": client.version}
    if with_contacts:
        data["contacts"] = [contact_dict(c) for c in client.contacts]
    return data


def comment_dict(comment: ClientComment) -> dict[str, Any]:
    return {"id": comment.id, "client_id": comment.client_id, "text": comment.text,
            "user_id": comment.user_id, "created_at": comment.created_at}


def history_dict(row: ClientHistory) -> dict[str, Any]:
    return {"id": row.id, "field": row.field, "old_value": row.old_value,
            "new_value": row.new_value, "user_id": row.user_id, "source": row.source,
            "changed_at": row.changed_at, "contact_id": row.contact_id}


def list_item(client: Client) -> dict[str, Any]:
    """A row of the client list: the client without contacts, with its list phone and
    e-mail."""
    return {**client_dict(client, with_contacts=False), "phone": client.main_phone,
            "email": client.main_email}


class _Party(Protocol):
    """A client or contact row, whole or just the columns a match shows."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...


class _Client(_Party, Protocol):
    @property
    def inn(self) -> str | None: ...


def matches(hits: Iterable[tuple[_Client, _Party | None, str, str]]) -> list[dict[str, Any]]:
    """``find_matches`` rows from (client, contact or None, reason, value) hits: one per
    client and contact, with every reason it matched for, in the order found."""
    found: dict[tuple[int, int | None], dict[str, Any]] = {}
    for client, contact, reason, value in hits:
        row = found.setdefault((client.id, contact.id if contact else None), {
            "client_id": client.id, "client_name": client.name, "inn": client.inn,
            "contact_id": contact.id if contact else None,
            "contact_name": contact.name if contact else None, "reasons": []})
        row["reasons"].append({"reason": reason, "value": value})
    return list(found.values())
