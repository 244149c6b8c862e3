"""Clients service: companies, their requisites and contacts (MISSION C1–C9).

Entrypoints only: parse, call the domain rules, persist (services/clients/store.py),
emit.  The core (clients, the list, merging, comments, history) is here; contacts,
import/export, groups and the consumed events are parts of their own (contacts.py,
import_export.py, groups.py, consumers.py).  The contract is README.md next to this file.
"""
from __future__ import annotations

from typing import Any

from services.clients import models, store
from services.clients.consumers import ConsumersEntrypoints
from services.clients.contacts import ContactsEntrypoints
from services.clients.domain.clients import (
    check_source,
    split_client_input,
    validate_assignment,
    validate_client_create,
    validate_client_update,
)
from services.clients.domain.history import changes, client_record, merged_record
from services.clients.domain.inputs import check_lang, check_version, first_contact
from services.clients.domain.listing import parse_list_query
from services.clients.domain.requisites import KIND_FIELDS, validate_requisites
from services.clients.domain.text import clean_text
from services.clients.groups import GroupsEntrypoints
from services.clients.import_export import ImportExportEntrypoints
from services.clients.models import ClientComment
from services.clients.schemas import client_dict, comment_dict, history_dict, list_item
from services.kit.dependencies import CallLog, Permissions, UnitOfWork
from services.kit.entrypoints import rpc
from services.kit.errors import ValidationError
from services.kit.parse import identifier
from services.kit.service import HealthCheck

COMMENT_LIMIT = 10_000


class ClientsService(ContactsEntrypoints, ImportExportEntrypoints, GroupsEntrypoints,
                     ConsumersEntrypoints, HealthCheck):
    name = "clients"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    may = Permissions()

    # -- clients ------------------------------------------------------------------------
    @rpc
    def create_client(self, data: dict[str, Any], user_id: int | None = None,
                      lang: str = "ru", source: str = "ui") -> dict[str, Any]:
        """A new client with its requisites and, optionally, its first contacts."""
        source = check_source(data.get("source", source) if isinstance(data, dict) else source)
        lang = check_lang(lang)
        own, assignment, requisites, contacts_in = split_client_input(data)
        own.setdefault("kind", "legal")
        fields = validate_client_create(own)
        cleaned, warnings = validate_requisites(str(fields["kind"]), requisites)
        assigned = validate_assignment(assignment)
        self.may.check("clients", [assigned.get("manager_id") or self.may.user_id],
                       "a new client")
        contacts = [first_contact(i, c) for i, c in enumerate(contacts_in)]
        [client_id] = store.insert_clients(self.db, [(fields, cleaned, assigned)], user_id,
                                           lang, source)
        store.insert_contacts(self.db, [(client_id, c) for c in contacts], user_id, source)
        client = store.find_client(self.db, client_id)
        result = client_dict(client)
        result["warnings"] = warnings
        result["duplicates"] = store.duplicates_of_client(self.db, client)
        return result

    @rpc
    def get_client(self, client_id: int) -> dict[str, Any]:
        """A client with its contacts; a merged one carries ``merged_into``."""
        client = store.find_client(self.db, client_id)
        result = client_dict(client)
        result["open_reminders"] = store.open_reminders(self.db, client.id)
        return result

    @rpc
    def update_client(self, client_id: int, data: dict[str, Any], user_id: int | None = None,
                      version: int | None = None, source: str = "ui") -> dict[str, Any]:
        """Change fields and requisites; only the keys given change.  Every changed field
        is written to the history and announced in one client_updated event."""
        source = check_source(source)
        client = store.live_client(self.db, client_id, lock=True)
        self.may.check("clients", [client.manager_id], f"client {client.id}")
        check_version(client, version)
        own, assignment, requisites_in, contacts_in = split_client_input(data)
        if contacts_in:
            raise ValidationError("Контакты добавляются отдельно (add_contact).", field="contacts",
                                  key="contacts.separately")
        fields = validate_client_update(own)
        assigned = validate_assignment(assignment)
        kind = str(fields.get("kind") or client.kind)
        kept = {k: v for k, v in (client.requisites or {}).items() if k in KIND_FIELDS[kind]}
        cleaned, warnings = validate_requisites(kind, {**kept, **requisites_in})
        old = client_record(client_dict(client, with_contacts=False), client.requisites or {})
        new = client_record({**old, **fields, **assigned}, cleaned)
        rows = changes(old, new)
        if rows:
            store.apply_record(self.db, client, new, cleaned, user_id)
            store.refresh_reach(self.db, [client.id])
            store.write_history(self.db, client.id, rows, user_id, source)
            store.announce_update(self.db, client, rows, user_id)
        result = client_dict(client)
        result["warnings"] = warnings
        result["duplicates"] = store.duplicates_of_client(self.db, client)
        return result

    @rpc
    def search_clients(self, query: str = "", page: int = 1, per_page: int = 50,
                       filters: dict[str, Any] | None = None, sort: str = "name",
                       manager_order: list[int] | None = None,
                       count: bool = True) -> dict[str, Any]:
        """One page of live clients matching the search box and the filters (C4, C6).
        ``count=False`` skips counting every match (the header's search shows a few)."""
        q = parse_list_query(query, filters, sort, page, per_page, manager_order or ())
        clients, total, exact = store.list_page(self.db, q, count)
        return {"total": total, "total_exact": exact, "page": q.page, "per_page": q.per_page,
                "items": [list_item(c) for c in clients]}

    @rpc
    def find_duplicates(self, client_id: int) -> list[dict[str, Any]]:
        """Other live clients with the same INN or a shared phone (C7)."""
        return store.duplicates_of_client(self.db, store.find_client(self.db, client_id))

    @rpc
    def merge_clients(self, survivor_id: int, merged_id: int, user_id: int | None = None,
                      source: str = "ui") -> dict[str, Any]:
        """Fold ``merged_id`` into ``survivor_id``: its contacts, comments, reminders and
        history move over, the survivor's empty fields take its values, and it is marked
        merged.  Deals and other services learn it from client_merged."""
        source = check_source(source)
        survivor_key = identifier(survivor_id, "survivor_id")
        merged_key = identifier(merged_id, "merged_id")
        if survivor_key == merged_key:
            raise ValidationError("Клиента нельзя объединить с ним самим.", field="merged_id",
                                  key="merge.self")
        # lock both in id order, so two merges of the same pair cannot deadlock
        first, second = sorted((survivor_key, merged_key))
        locked = {first: store.live_client(self.db, first, lock=True),
                  second: store.live_client(self.db, second, lock=True)}
        survivor, merged = locked[survivor_key], locked[merged_key]
        for one in (survivor, merged):
            self.may.check("clients", [one.manager_id], f"client {one.id}")
        old = client_record(client_dict(survivor, with_contacts=False), survivor.requisites or {})
        other = client_record(client_dict(merged, with_contacts=False), merged.requisites or {})
        plan, requisites = merged_record(old, other, survivor.kind)
        rows = changes(old, plan)
        store.move_belongings(self.db, merged.id, survivor.id)
        if merged.last_contact_at:
            store.touch(self.db, survivor.id, merged.last_contact_at)
        store.apply_record(self.db, survivor, plan, requisites, user_id)
        store.refresh_reach(self.db, [survivor.id])
        summary = f"{merged.name} (№{merged.number})"
        store.write_history(self.db, survivor.id, [("merged", None, summary), *rows],
                            user_id, source)
        merged.merged_into = survivor.id
        merged.updated_by = user_id
        merged.version += 1
        store.write_history(self.db, merged.id,
                            [("merged_into", None, f"{survivor.name} (№{survivor.number})")],
                            user_id, source)
        self.db.emit("client_merged", {"survivor_id": survivor.id, "merged_id": merged.id,
                                       "user_id": user_id})
        if rows:
            store.announce_update(self.db, survivor, rows, user_id)
        self.db.flush()
        self.db.refresh(survivor)
        return client_dict(survivor)

    # -- comments and history -----------------------------------------------------------
    @rpc
    def add_comment(self, client_id: int, text: str, user_id: int | None = None
                    ) -> dict[str, Any]:
        """A comment on the client page; it counts as contact with the client (C6)."""
        client = store.live_client(self.db, client_id)
        cleaned = clean_text(text, "text", COMMENT_LIMIT) if isinstance(text, str) else None
        if cleaned is None:
            raise ValidationError("Напишите что-нибудь.", field="text", key="required")
        comment = ClientComment(client_id=client.id, text=text.strip(), user_id=user_id)
        self.db.add(comment)
        self.db.flush()
        store.touch(self.db, client.id, comment.created_at)
        return comment_dict(comment)

    @rpc
    def list_comments(self, client_id: int, limit: int = 100) -> list[dict[str, Any]]:
        client = store.find_client(self.db, client_id)
        return [comment_dict(c) for c in store.comments(
            self.db, client.id, min(identifier(limit, "limit"), 500))]

    @rpc
    def client_history(self, client_id: int, limit: int = 200) -> list[dict[str, Any]]:
        """Who changed which field, from what, to what, when; newest first."""
        client = store.find_client(self.db, client_id)
        return [history_dict(r) for r in store.history(
            self.db, client.id, min(identifier(limit, "limit"), 1000))]
