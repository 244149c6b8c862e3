"""Contact people of clients (C5): adding and changing them, and finding them by name,
phone or e-mail (the header's search, telephony's caller lookup, the enquiry matching of
intake): the entrypoints.  Checks are domain/clients.py's, queries store.py's."""
from __future__ import annotations

import re
from typing import Any

from services.clients import store
from services.clients.domain.clients import check_source, merge_contact_update, validate_contact
from services.clients.domain.listing import phone_query
from services.clients.domain.phones import normalize_phone
from services.clients.domain.text import clean_text
from services.clients.schemas import contact_dict, matches
from services.kit.dependencies import Work
from services.kit.entrypoints import rpc
from services.kit.errors import ValidationError
from services.kit.parse import identifier


class ContactsEntrypoints:
    db: Work
    may: Any

    @rpc
    def add_contact(self, client_id: int, data: dict[str, Any],
                    user_id: int | None = None, source: str = "ui") -> dict[str, Any]:
        """A contact person; a name and one phone are enough (C5)."""
        source = check_source(source)
        client = store.live_client(self.db, client_id)
        self.may.check("clients", [client.manager_id], f"client {client.id}")
        if not isinstance(data, dict):
            raise ValidationError("Нужен объект JSON.", field="contact", key="object.invalid")
        [contact] = store.insert_contacts(self.db, [(client.id, validate_contact(data))],
                                          user_id, source)
        return contact

    @rpc
    def update_contact(self, contact_id: int, data: dict[str, Any],
                       user_id: int | None = None, source: str = "ui") -> dict[str, Any]:
        """Change a contact; the keys given replace the current values (lists whole)."""
        source = check_source(source)
        contact = store.find_contact(self.db, identifier(contact_id, "contact_id"), lock=True)
        owner = store.live_client(self.db, contact.client_id)
        self.may.check("clients", [owner.manager_id], f"client {owner.id}")
        cleaned = merge_contact_update(contact_dict(contact), data)
        store.update_contact(self.db, contact, cleaned, user_id, source)
        return contact_dict(contact)

    @rpc
    def list_contacts(self, client_id: int) -> list[dict[str, Any]]:
        return [contact_dict(c) for c in store.find_client(self.db, client_id).contacts]

    @rpc
    def find_contact_by_phone(self, phone: str) -> dict[str, Any] | None:
        """The contact whose phone is ``phone`` in any format, or None.  A number stored
        with an extension is found by the number alone (a PBX reports no extension)."""
        try:
            e164 = normalize_phone(phone)
        except ValidationError:
            return None
        contact = store.contact_by_phone(self.db, e164)
        return contact_dict(contact) if contact else None

    @rpc
    def find_contacts(self, text: str, limit: int = 5) -> list[dict[str, Any]]:
        """Contacts of live clients for the header's search: by a part of the name, a
        phone in any format (4+ digits) or an exact e-mail; each with its client's name."""
        query = clean_text(text, "text", 200) if isinstance(text, str) else None
        if query is None or len(query) < 2:
            return []
        email = query.lower() if "@" in query else None
        found = store.contacts_matching(self.db, query, phone_query(query), email,
                                        max(1, min(int(limit), 20)))
        return [{**contact_dict(c), "client_name": name} for c, name in found]

    @rpc
    def find_matches(self, phone: str | None = None, email: str | None = None,
                     inn: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        """Clients and contacts that a new enquiry may belong to: the same phone in any
        format, the same e-mail (case-insensitive) or the same INN.  Unusable values are
        ignored (an enquiry's details are as the person typed them)."""
        return self._matches(phone, email, inn, limit)

    @rpc
    def find_matches_many(self, queries: list[dict[str, Any]], limit: int = 10
                          ) -> list[list[dict[str, Any]]]:
        """``find_matches`` for many enquiries in one call (a batch of inbound mail, the
        leads still without duplicates): one answer per query {``phone``?, ``email``?,
        ``inn``?}, in order."""
        if not isinstance(queries, list) or len(queries) > 500:
            raise ValidationError("Ожидался список запросов (не больше 500).", field="queries",
                                  key="matches.queries")
        # one statement per kind of look-up for the whole batch, not three per query
        keys = [_match_keys(q.get("phone"), q.get("email"), q.get("inn"))
                if isinstance(q, dict) else (None, None, None) for q in queries]
        found = [store.hits_many(self.db, reason, [v for k in keys if (v := k[i])], limit)
                 for i, reason in enumerate(("phone", "email", "inn"))]
        return [matches(hit for i, value in enumerate(k) if value
                        for hit in found[i][value])[:limit] for k in keys]

    def _matches(self, phone: str | None, email: str | None, inn: str | None,
                 limit: int) -> list[dict[str, Any]]:
        e164, address, digits = _match_keys(phone, email, inn)
        hits: list[store.Hit] = []
        if e164:
            hits += store.contacts_with_phone(self.db, e164, limit)
        if address:
            hits += store.contacts_with_email(self.db, address, limit)
        if digits:
            hits += store.clients_with_inn(self.db, digits, limit)
        return matches(hits)[:limit]


def _match_keys(phone: Any, email: Any, inn: Any) -> tuple[str | None, str | None, str | None]:
    """What an enquiry's phone, e-mail and INN are looked up by (None: unusable, ignored):
    the phone's E.164 without its extension, the address lower-cased, the INN's digits."""
    e164 = None
    if phone and isinstance(phone, str):
        try:
            e164 = normalize_phone(phone).split(";", 1)[0] or None
        except ValidationError:
            e164 = None
    address = email.strip().lower() if isinstance(email, str) else ""
    digits = re.sub(r"\D", "", inn) if isinstance(inn, str) else ""
    return e164, address if "@" in address else None, digits if len(digits) in (10, 12) else None
