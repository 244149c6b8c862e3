"""Persistence shared by the clients service's entrypoints: creating clients and contacts
(forms, API and file import alike), the change history, duplicates, the last-contact
clock.  Every function works inside the caller's unit of work and commits nothing.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update

from services.clients.domain.clients import auto_name, duplicate_keys
from services.clients.domain.history import changes, contact_summary
from services.clients.domain.listing import search_text
from services.clients.domain.phones import phone_base
from services.clients.models import (
    Client,
    ClientComment,
    ClientHistory,
    ClientReminder,
    Contact,
    ContactEmail,
    ContactPhone,
)
from services.clients.search import duplicates_of
from services.kit.dependencies import Work
from services.kit.errors import Conflict, NotFound


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
            "version": client.version}
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


def find_client(db: Work, client_id: object, lock: bool = False) -> Client:
    try:
        key = int(client_id)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise NotFound(f"client {client_id!r} not found", entity="client",
                       id=str(client_id)) from None
    stmt = select(Client).where(Client.id == key)
    client = db.scalars(stmt.with_for_update() if lock else stmt).first()
    if client is None:
        raise NotFound(f"client {client_id} not found", entity="client", id=key)
    return client


def live_client(db: Work, client_id: object, lock: bool = False) -> Client:
    """A client that can still be changed: one merged into another is read-only."""
    client = find_client(db, client_id, lock)
    if client.merged_into is not None:
        raise Conflict(f"client {client.id} was merged into client {client.merged_into}",
                       entity="client", id=client.id, merged_into=client.merged_into)
    return client


def survivor_id(db: Work, client_id: int) -> int | None:
    """Where a client lives now: itself, or the client it was merged into (events and
    other services may still carry a merged client's id)."""
    seen: set[int] = set()
    current: int | None = client_id
    while current is not None and current not in seen:
        seen.add(current)
        merged_into = db.execute(select(Client.merged_into).where(Client.id == current)).first()
        if merged_into is None:
            return None
        if merged_into[0] is None:
            return current
        current = merged_into[0]
    return None


def rename(client: Client, name: str) -> None:
    client.name = name
    client.search_name = search_text(name)


def write_history(db: Work, client_id: int, rows: Iterable[tuple[str, Any, Any]],
                  user_id: int | None, source: str, contact_id: int | None = None) -> None:
    for field, old, new in rows:
        db.add(ClientHistory(client_id=client_id, field=field, old_value=old, new_value=new,
                             user_id=user_id, source=source, contact_id=contact_id))


def new_client(db: Work, fields: Mapping[str, Any], requisites: dict[str, Any],
               assignment: Mapping[str, Any], user_id: int | None, lang: str,
               source: str) -> Client:
    """Insert a client, name it "Клиент №N" if it has no name, record and announce it."""
    client = Client(kind=fields["kind"], name=fields.get("name") or "",
                    inn=requisites.get("inn"), requisites=requisites,
                    address=fields.get("address"), city=assignment.get("city"),
                    website=fields.get("website"),
                    manager_id=assignment.get("manager_id") or user_id,
                    created_by=user_id, updated_by=user_id, version=1)
    db.add(client)
    db.flush()  # the number comes from the sequence on insert
    rename(client, client.name or auto_name(client.number, lang))
    write_history(db, client.id, [("created", None, client.name)], user_id, source)
    db.emit("client_created", {"client_id": client.id, "name": client.name,
                               "inn": client.inn, "manager_id": client.manager_id})
    return client


def new_contact(db: Work, client: Client, cleaned: Mapping[str, Any], user_id: int | None,
                source: str) -> Contact:
    contact = Contact(client_id=client.id, name=cleaned["name"],
                      position=cleaned.get("position"), created_by=user_id)
    contact.phones = [ContactPhone(e164=p) for p in cleaned.get("phones", [])]
    contact.emails = [ContactEmail(email=e) for e in cleaned.get("emails", [])]
    db.add(contact)
    db.flush()
    result = contact_dict(contact)
    write_history(db, client.id, [("contact", None, contact_summary(result))], user_id,
                  source, contact_id=contact.id)
    db.emit("contact_added", {"client_id": client.id, "contact": result})
    return contact


def update_contact(db: Work, contact: Contact, cleaned: Mapping[str, Any],
                   user_id: int | None, source: str) -> list[tuple[str, Any, Any]]:
    """Apply a checked contact; returns the history rows written (none if unchanged)."""
    before = contact_dict(contact)
    after = {**before, **cleaned}
    rows = [(f"contact.{field}", old, new) for field, old, new in changes(
        {k: before[k] for k in cleaned}, {k: after[k] for k in cleaned})]
    if not rows:
        return []
    contact.name = cleaned["name"]
    contact.position = cleaned["position"]
    if before["phones"] != cleaned["phones"]:
        contact.phones = [ContactPhone(e164=p) for p in cleaned["phones"]]
    if before["emails"] != cleaned["emails"]:
        contact.emails = [ContactEmail(email=e) for e in cleaned["emails"]]
    contact.updated_by = user_id
    contact.updated_at = datetime.now(UTC)
    db.flush()
    write_history(db, contact.client_id, rows, user_id, source, contact_id=contact.id)
    db.emit("contact_updated", {"client_id": contact.client_id,
                                "contact": contact_dict(contact)})
    return rows


def duplicates(db: Work, client_id: int | None, inn: str | None,
               contacts: Iterable[Mapping[str, Any]], phone: str | None = None
               ) -> list[dict[str, Any]]:
    """Other live clients sharing the INN or a phone: [{id, number, name, inn, reasons:
    [{reason: "inn"|"phone", value}]}], one entry per client."""
    keys = duplicate_keys({"inn": inn, "phone": phone}, list(contacts))
    inn_key = next((k[4:] for k in keys if k.startswith("inn:")), None)
    phones = sorted(phone_base(k[6:]) for k in keys if k.startswith("phone:"))
    if not inn_key and not phones:
        return []
    found: dict[int, dict[str, Any]] = {}
    for client, reason, value in db.execute(duplicates_of(client_id, inn_key, phones)):
        entry = found.setdefault(client.id, {"id": client.id, "number": client.number,
                                             "name": client.name, "inn": client.inn,
                                             "reasons": []})
        if {"reason": reason, "value": value} not in entry["reasons"]:
            entry["reasons"].append({"reason": reason, "value": value})
    return list(found.values())


def duplicates_of_client(db: Work, client: Client) -> list[dict[str, Any]]:
    return duplicates(db, client.id, client.inn,
                      [contact_dict(c) for c in client.contacts],
                      (client.requisites or {}).get("phone"))


def touch(db: Work, client_id: int, at: datetime) -> None:
    """Move the client's last contact forward to ``at`` (never back, never past now):
    events may arrive late and in any order."""
    at = min(at, datetime.now(UTC))
    db.execute(update(Client).where(Client.id == client_id)
               .values(last_contact_at=func.greatest(Client.last_contact_at, at),
                       updated_at=Client.updated_at))


def open_reminders(db: Work, client_id: int) -> int:
    return int(db.scalar(select(func.count()).select_from(ClientReminder).where(
        ClientReminder.client_id == client_id, ClientReminder.completed_at.is_(None))) or 0)
