"""Entrypoints of a deal's contacts (D7)."""
from __future__ import annotations

from typing import Any

from services.deals import domain, store
from services.deals.base import DealsBase
from services.deals.models import Deal, DealContact
from services.deals.schemas import contact_dict
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import NotFound, ValidationError


class ContactsEntrypoints(DealsBase):
    """The deal's contacts: copies of the client's (D7)."""

    # -------------------------------------------------------------- contacts
    @rpc
    def open_deals_for_contact(self, contact_id: int) -> list[int]:
        return store.open_deal_ids_for_contact(self.db, contact_id)

    @rpc
    def add_deal_contact(self, deal_id: int, data: dict[str, Any],
                         user_id: int | None = None) -> dict[str, Any]:
        """D7: ``{"contact_id": n}`` puts back one of the client's contacts; a new person
        (``name``, ``phones``...) is added to the client first (clients.add_contact), then
        to the deal."""
        deal = self._deal(deal_id, lock=True)
        if not isinstance(data, dict):
            raise ValidationError("contact: expected an object", field="contact",
                                  key="deal.object_expected", params={"field": "contact"})
        contact_id = domain.identifier(data.get("contact_id"), "contact_id", required=False)
        if contact_id is not None:
            contacts = {c["id"]: c for c in self._client(deal.client_id).get("contacts", [])}
            if contact_id not in contacts:
                raise ValidationError("contact_id: not a contact of the deal's client",
                                      field="contact_id", key="deal.contact_foreign",
                                      params={"contact_id": contact_id})
            contact = contacts[contact_id]
        else:
            fields = {k: data[k] for k in ("name", "position", "phones", "emails") if k in data}
            contact = self.clients.add_contact(deal.client_id, fields, user_id=user_id)
        if any(c.contact_id == contact["id"] for c in deal.contacts):
            raise ValidationError("contact_id: already on this deal", field="contact_id",
                                  key="deal.contact_twice", params={"contact_id": contact["id"]})
        copy = DealContact(**domain.contact_copy(contact, is_main=not deal.contacts),
                           added_by=user_id)
        deal.contacts.append(copy)
        store.add_history(self.db, deal, "contact_added", None, copy.name, user_id)
        deal.version += 1
        self.db.flush()
        return contact_dict(copy)

    def _deal_contact(self, deal: Deal, contact_id: int) -> DealContact:
        found = next((c for c in deal.contacts if c.contact_id == int(contact_id)), None)
        if found is None:
            raise NotFound(f"contact {contact_id} is not on deal {deal.id}", entity="contact",
                           id=contact_id)
        return found

    @rpc
    def remove_deal_contact(self, deal_id: int, contact_id: int,
                            user_id: int | None = None) -> None:
        """Removes the deal's copy only; the client's contact stays (D7)."""
        deal = self._deal(deal_id, lock=True)
        contact = self._deal_contact(deal, contact_id)
        deal.contacts.remove(contact)
        if contact.is_main and deal.contacts:
            deal.contacts[0].is_main = True
        store.add_history(self.db, deal, "contact_removed", contact.name, None, user_id)
        deal.version += 1

    @rpc
    def set_main_contact(self, deal_id: int, contact_id: int,
                         user_id: int | None = None) -> None:
        deal = self._deal(deal_id, lock=True)
        chosen = self._deal_contact(deal, contact_id)
        old = next((c.name for c in deal.contacts if c.is_main), None)
        for c in deal.contacts:
            c.is_main = c is chosen
        if old != chosen.name:
            store.add_history(self.db, deal, "main_contact", old, chosen.name, user_id)
        deal.version += 1

    @consumes("clients", "contact_added")
    def on_contact_added(self, event: Envelope) -> None:
        """A client's first contact joins its open deals that have none yet, as main
        (a deal made before the client had contacts).  Deals that have contacts keep the
        set their managers chose."""
        contact, client_id = event.data["contact"], int(event.data["client_id"])
        for deal in store.open_deals_without_contacts(self.db, client_id):
            deal.contacts.append(DealContact(**domain.contact_copy(contact, is_main=True)))
            store.add_history(self.db, deal, "contact_added", None, contact["name"], None)
