"""Clients service: companies, their requisites and contacts (MISSION C1–C9)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select

from services.clients import models
from services.clients.domain.clients import (CLIENT_FIELDS, auto_name, validate_client_create,
                                            validate_contact)
from services.clients.domain.phones import normalize_phone, phone_search_key
from services.clients.domain.requisites import validate_requisites
from services.clients.models import (
    Client,
    ClientHistory,
    Contact,
    ContactEmail,
    ContactPhone,
)
from services.kit.dependencies import CallLog, UnitOfWork
from services.kit.entrypoints import rpc
from services.kit.errors import NotFound, ValidationError
from services.kit.service import HealthCheck


# Fields of a create request that are about the record, not the company.
SERVICE_FIELDS = ("manager_id", "source", "city")


def contact_dict(contact: Contact) -> dict[str, Any]:
    return {"id": contact.id, "client_id": contact.client_id, "name": contact.name,
            "position": contact.position, "phones": [p.e164 for p in contact.phones],
            "emails": [e.email for e in contact.emails]}


def client_dict(client: Client, with_contacts: bool = True) -> dict[str, Any]:
    data = {"id": client.id, "number": client.number, "kind": client.kind, "name": client.name,
            "inn": client.inn, "requisites": client.requisites or {}, "address": client.address,
            "city": client.city, "website": client.website, "manager_id": client.manager_id,
            "created_by": client.created_by, "created_at": client.created_at,
            "updated_at": client.updated_at, "version": client.version}
    if with_contacts:
        data["contacts"] = [contact_dict(c) for c in client.contacts]
    return data


class ClientsService(HealthCheck):
    name = "clients"

    db = UnitOfWork(models.metadata)
    calls = CallLog()

    def _client(self, client_id: int) -> Client:
        client = self.db.get(Client, int(client_id))
        if client is None:
            raise NotFound(f"client {client_id} not found", entity="client", id=client_id)
        return client

    @rpc
    def create_client(self, data: dict[str, Any], user_id: int | None = None,
                      lang: str = "ru") -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ValidationError("client: expected an object of fields", field="client")
        meta = {k: data[k] for k in SERVICE_FIELDS if k in data}
        own = {k: data[k] for k in CLIENT_FIELDS if k in data}
        own.setdefault("kind", "legal")
        fields = validate_client_create(own)
        kind = str(fields["kind"])
        cleaned, warnings = validate_requisites(
            kind, {k: v for k, v in data.items() if k not in CLIENT_FIELDS and k not in meta})
        client = Client(kind=kind, name=fields["name"] or "",
                        inn=cleaned.get("inn"), requisites=cleaned,
                        address=fields["address"], city=meta.get("city"),
                        website=fields["website"],
                        manager_id=meta.get("manager_id") or user_id,
                        created_by=user_id, updated_by=user_id)
        self.db.add(client)
        self.db.flush()
        if not client.name:
            client.name = auto_name(client.number, lang)
        self.db.add(ClientHistory(client_id=client.id, field="created", new_value=client.name,
                                  user_id=user_id, source=meta.get("source", "ui")))
        self.db.emit("client_created", {"client_id": client.id, "name": client.name,
                                        "inn": client.inn, "manager_id": client.manager_id})
        result = client_dict(client, with_contacts=False)
        result["contacts"] = []
        result["warnings"] = warnings
        return result

    @rpc
    def get_client(self, client_id: int) -> dict[str, Any]:
        return client_dict(self._client(client_id))

    @rpc
    def search_clients(self, query: str = "", page: int = 1, per_page: int = 50) -> dict[str, Any]:
        stmt = select(Client).where(Client.merged_into.is_(None))
        text_query = (query or "").strip()
        if text_query:
            key = phone_search_key(text_query)
            conditions = [func.lower(Client.name).contains(text_query.lower()),
                          Client.inn == text_query]
            if key:
                conditions.append(Client.id.in_(
                    select(Contact.client_id).join(ContactPhone)
                    .where(ContactPhone.e164.contains(key))))
            stmt = stmt.where(or_(*conditions))
        total = self.db.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = self.db.scalars(stmt.order_by(Client.name, Client.id)
                               .offset((max(page, 1) - 1) * per_page).limit(per_page)).all()
        return {"total": total, "page": page, "per_page": per_page,
                "items": [client_dict(c, with_contacts=False) for c in rows]}

    @rpc
    def add_contact(self, client_id: int, data: dict[str, Any],
                    user_id: int | None = None) -> dict[str, Any]:
        client = self._client(client_id)
        cleaned = validate_contact(data)
        contact = Contact(client_id=client.id, name=cleaned["name"],
                          position=cleaned.get("position"), created_by=user_id)
        contact.phones = [ContactPhone(e164=p) for p in cleaned.get("phones", [])]
        contact.emails = [ContactEmail(email=e) for e in cleaned.get("emails", [])]
        self.db.add(contact)
        self.db.flush()
        self.db.add(ClientHistory(client_id=client.id, field="contact",
                                  new_value=contact.name, user_id=user_id))
        result = contact_dict(contact)
        self.db.emit("contact_added", {"client_id": client.id, "contact": result})
        return result

    @rpc
    def list_contacts(self, client_id: int) -> list[dict[str, Any]]:
        return [contact_dict(c) for c in self._client(client_id).contacts]

    @rpc
    def find_contact_by_phone(self, phone: str) -> dict[str, Any] | None:
        """The contact whose phone is ``phone`` in any format, or None."""
        try:
            e164 = normalize_phone(phone)
        except ValidationError:
            return None
        contact = self.db.scalars(select(Contact).join(ContactPhone)
                                  .where(ContactPhone.e164 == e164)
                                  .order_by(Contact.id).limit(1)).first()
        return contact_dict(contact) if contact else None
