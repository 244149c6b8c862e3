"""Clients service: companies, their requisites and contacts (MISSION C1–C9).

Entrypoints only: parse, call the domain rules, persist (services/clients/store.py),
emit.  The contract is README.md next to this file.
"""
from __future__ import annotations

import base64
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import selectinload

from services.clients import groups, models, store
from services.clients.domain.clients import (
    check_source,
    merge_contact_update,
    merge_plan,
    split_client_input,
    validate_assignment,
    validate_client_create,
    validate_client_update,
    validate_contact,
)
from services.clients.domain.history import (
    REQUISITES_PREFIX,
    change_map,
    changes,
    client_record,
)
from services.clients.domain.importing import (
    EXPORT_COLUMNS,
    client_rows,
    export_rows,
    group_rows,
    preview_import,
)
from services.clients.domain.inputs import (
    check_lang,
    check_version,
    decode_file,
    event_time,
    first_contact,
)
from services.clients.domain.listing import parse_list_query, phone_query
from services.clients.domain.phones import normalize_phone
from services.clients.domain.segments import segment_changes
from services.clients.domain.requisites import BANK_FIELDS, KIND_FIELDS, validate_requisites
from services.clients.domain.text import clean_text
from services.clients.models import (
    Client,
    ClientComment,
    ClientHistory,
    ClientImport,
    ClientReminder,
    Contact,
    ContactEmail,
    ContactPhone,
)
from services.clients.schemas import client_dict, comment_dict, contact_dict, history_dict
from services.clients.search import contact_ids, list_statements
from services.kit import clock
from services.kit.dependencies import CallLog, Permissions, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import Conflict, Forbidden, NotFound, ValidationError
from services.kit.parse import identifier
from services.kit.service import HealthCheck

COMMENT_LIMIT = 10_000
EXPORT_LIMIT = 10_000  # clients per exported file; narrow the filter for more
PREVIEW_CLIENTS = 20  # grouped clients shown in an import preview
IMPORT_KEPT = timedelta(days=1)  # how long a previewed file waits to be imported


class ClientsService(HealthCheck):
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
            self._apply(client, new, cleaned, user_id)
            store.refresh_reach(self.db, [client.id])
            store.write_history(self.db, client.id, rows, user_id, source)
            self._announce_update(client, rows, user_id)
        result = client_dict(client)
        result["warnings"] = warnings
        result["duplicates"] = store.duplicates_of_client(self.db, client)
        return result

    def _apply(self, client: Client, record: dict[str, Any], requisites: dict[str, Any],
               user_id: int | None) -> None:
        if record["name"] != client.name:
            store.rename(client, record["name"])
        client.kind = record["kind"]
        client.website = record["website"]
        client.address = record["address"]
        client.city = record["city"]
        client.manager_id = record["manager_id"]
        client.requisites = requisites
        client.inn = requisites.get("inn")
        client.updated_by = user_id
        client.version += 1
        self.db.flush()

    def _announce_update(self, client: Client, rows: list[tuple[str, Any, Any]],
                         user_id: int | None) -> None:
        self.db.emit("client_updated", {
            "client_id": client.id, "changes": change_map(rows), "inn": client.inn,
            "name": client.name, "manager_id": client.manager_id, "kind": client.kind,
            "client_group_id": client.client_group_id, "user_id": user_id})

    @rpc
    def search_clients(self, query: str = "", page: int = 1, per_page: int = 50,
                       filters: dict[str, Any] | None = None, sort: str = "name",
                       manager_order: list[int] | None = None,
                       count: bool = True) -> dict[str, Any]:
        """One page of live clients matching the search box and the filters (C4, C6).
        ``count=False`` skips counting every match (the header's search shows a few)."""
        q = parse_list_query(query, filters, sort, page, per_page, manager_order or ())
        page_stmt, total_stmt = list_statements(q)
        clients = self.db.scalars(page_stmt).all()
        total = self.db.scalar(total_stmt) if count else None
        return {"total": total, "page": q.page, "per_page": q.per_page,
                "items": self._list_items(clients)}

    @staticmethod
    def _list_items(clients: list[Client]) -> list[dict[str, Any]]:
        return [{**client_dict(c, with_contacts=False), "phone": c.main_phone,
                 "email": c.main_email} for c in clients]

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
        own_keys = {REQUISITES_PREFIX + key for key in KIND_FIELDS[survivor.kind]}
        plan = {key: value for key, value in merge_plan(old, other).items()
                if not key.startswith(REQUISITES_PREFIX) or key in own_keys}
        plan["kind"] = survivor.kind
        if any(old.get(REQUISITES_PREFIX + key) for key in BANK_FIELDS):
            # an account is checked against its own bank's BIK: never mix two banks
            plan.update({REQUISITES_PREFIX + key: old.get(REQUISITES_PREFIX + key)
                         for key in BANK_FIELDS if REQUISITES_PREFIX + key in own_keys})
        requisites = {key[len(REQUISITES_PREFIX):]: value for key, value in plan.items()
                      if key.startswith(REQUISITES_PREFIX)}
        rows = changes(old, plan)
        self._move_belongings(merged.id, survivor.id)
        if merged.last_contact_at:
            store.touch(self.db, survivor.id, merged.last_contact_at)
        self._apply(survivor, plan, requisites, user_id)
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
            self._announce_update(survivor, rows, user_id)
        self.db.flush()
        self.db.refresh(survivor)
        return client_dict(survivor)

    def _move_belongings(self, from_id: int, to_id: int) -> None:
        for model in (Contact, ClientComment, ClientReminder, ClientHistory):
            self.db.execute(update(model).where(model.client_id == from_id)
                            .values(client_id=to_id))
        self.db.expire_all()

    # -- contacts -----------------------------------------------------------------------
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
        key = identifier(contact_id, "contact_id")
        contact = self.db.scalars(select(Contact).where(Contact.id == key)
                                  .with_for_update(of=Contact)).first()
        if contact is None:
            raise NotFound(f"contact {contact_id} not found", entity="contact", id=contact_id)
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
        base = e164.split(";", 1)[0]
        stmt = (select(Contact).join(ContactPhone).join(Client)
                .where(Client.merged_into.is_(None),
                       (ContactPhone.e164 == e164) | ContactPhone.e164.like(base + ";ext=%"))
                .order_by((ContactPhone.e164 != e164), Contact.id).limit(1))
        contact = self.db.scalars(stmt).first()
        return contact_dict(contact) if contact else None

    @rpc
    def find_contacts(self, text: str, limit: int = 5) -> list[dict[str, Any]]:
        """Contacts of live clients for the header's search: by a part of the name, a
        phone in any format (4+ digits) or an exact e-mail; each with its client's name."""
        query = clean_text(text, "text", 200) if isinstance(text, str) else None
        if query is None or len(query) < 2:
            return []
        email = query.lower() if "@" in query else None
        ids = contact_ids(query, phone_query(query), email).subquery()
        stmt = (select(Contact, Client.name).join(Client)
                .options(selectinload(Contact.phones), selectinload(Contact.emails))
                .where(Contact.id.in_(select(ids.c[0])), Client.merged_into.is_(None))
                .order_by(Contact.name, Contact.id).limit(max(1, min(int(limit), 20))))
        return [{**contact_dict(c), "client_name": name} for c, name in self.db.execute(stmt)]

    @rpc
    def find_matches(self, phone: str | None = None, email: str | None = None,
                     inn: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        """Clients and contacts that a new enquiry may belong to: the same phone in any
        format, the same e-mail (case-insensitive) or the same INN.  Unusable values are
        ignored (an enquiry's details are as the person typed them)."""
        found: dict[tuple[int, int | None], dict[str, Any]] = {}

        def note(client: Client, contact: Contact | None, reason: str, value: str) -> None:
            key = (client.id, contact.id if contact else None)
            row = found.setdefault(key, {
                "client_id": client.id, "client_name": client.name, "inn": client.inn,
                "contact_id": contact.id if contact else None,
                "contact_name": contact.name if contact else None, "reasons": []})
            row["reasons"].append({"reason": reason, "value": value})

        live = Client.merged_into.is_(None)
        if phone:
            try:
                e164 = normalize_phone(phone).split(";", 1)[0]
            except ValidationError:
                e164 = ""
            if e164:
                for contact, client in self.db.execute(
                        select(Contact, Client).join(ContactPhone).join(Client)
                        .where(live, (ContactPhone.e164 == e164)
                               | ContactPhone.e164.like(e164 + ";ext=%"))
                        .order_by(Contact.id).limit(limit)):
                    note(client, contact, "phone", e164)
        address = (email or "").strip().lower()
        if "@" in address:
            for contact, client in self.db.execute(
                    select(Contact, Client).join(ContactEmail).join(Client)
                    .where(live, func.lower(ContactEmail.email) == address)
                    .order_by(Contact.id).limit(limit)):
                note(client, contact, "email", address)
        digits = re.sub(r"\D", "", inn or "")
        if len(digits) in (10, 12):
            for client in self.db.scalars(select(Client).where(live, Client.inn == digits)
                                          .order_by(Client.id).limit(limit)):
                note(client, None, "inn", digits)
        return list(found.values())[:limit]

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
        rows = self.db.scalars(select(ClientComment).where(ClientComment.client_id == client.id)
                               .order_by(ClientComment.created_at.desc(), ClientComment.id.desc())
                               .limit(min(identifier(limit, "limit"), 500)))
        return [comment_dict(c) for c in rows]

    @rpc
    def client_history(self, client_id: int, limit: int = 200) -> list[dict[str, Any]]:
        """Who changed which field, from what, to what, when; newest first."""
        client = store.find_client(self.db, client_id)
        rows = self.db.scalars(select(ClientHistory).where(ClientHistory.client_id == client.id)
                               .order_by(ClientHistory.changed_at.desc(),
                                         ClientHistory.id.desc())
                               .limit(min(identifier(limit, "limit"), 1000)))
        return [history_dict(r) for r in rows]

    # -- import and export --------------------------------------------------------------
    @rpc
    def preview_import(self, content_b64: str, user_id: int | None = None,
                       filename: str | None = None) -> dict[str, Any]:
        """Read a CSV/XLSX file and report what an import would do, row by row; the file
        is kept under ``import_id`` for ``run_import``."""
        data = decode_file(content_b64)
        preview = preview_import(data)
        groups = group_rows(preview.rows_ok)
        known = self._existing_by_inn([g["requisites"].get("inn") for g in groups])
        # files nobody imported within a day are dropped as new ones come
        self.db.execute(delete(ClientImport).where(
            ClientImport.status == "previewed",
            ClientImport.created_at < clock.now() - IMPORT_KEPT))
        stored = ClientImport(filename=(filename or "")[:300] or None, content=data,
                              created_by=user_id)
        self.db.add(stored)
        self.db.flush()
        return {
            "import_id": stored.id, "rows_ok": len(preview.rows_ok),
            "rows_with_errors": len({e.row_number for e in preview.errors}),
            "new_clients": sum(1 for g in groups if g["requisites"].get("inn") not in known),
            "existing_clients": sum(1 for g in groups if g["requisites"].get("inn") in known),
            "errors": [vars(e) for e in preview.errors],
            "warnings": [vars(w) for w in preview.warnings],
            "ignored_columns": preview.ignored_columns,
            "clients": [{"name": g["client"].get("name"), "kind": g["client"]["kind"],
                         "inn": g["requisites"].get("inn"), "rows": g["row_numbers"],
                         "contacts": [c["name"] for c in g["contacts"]],
                         "existing_id": known.get(g["requisites"].get("inn"))}
                        for g in groups[:PREVIEW_CLIENTS]],
        }

    def _existing_by_inn(self, inns: list[str | None]) -> dict[str, int]:
        wanted = sorted({inn for inn in inns if inn})
        if not wanted:
            return {}
        rows = self.db.execute(select(Client.inn, Client.id)
                               .where(Client.inn.in_(wanted), Client.merged_into.is_(None))
                               .order_by(Client.id.desc()))
        return {inn: client_id for inn, client_id in rows}

    @rpc
    def run_import(self, import_id: int, user_id: int | None = None,
                   lang: str = "ru") -> dict[str, Any]:
        """Import the rows without errors of a previewed file, each whole or not at all.

        A row whose INN is already a client's adds its contact to that client (an export
        imported back creates nothing twice); rows with errors are skipped and reported.
        """
        lang = check_lang(lang)
        key = identifier(import_id, "import_id")
        stored = self.db.scalars(select(ClientImport).where(ClientImport.id == key)
                                 .with_for_update()).first()
        if stored is None:
            raise NotFound(f"import {import_id} not found", entity="import", id=import_id)
        if stored.created_by is not None and user_id is not None and stored.created_by != user_id:
            raise Forbidden("this file was uploaded by someone else", entity="import")
        if stored.status != "previewed":
            raise Conflict(f"import {import_id} has already run", entity="import",
                           id=stored.id)
        preview = preview_import(stored.content)
        known = self._existing_by_inn([row["requisites"].get("inn")
                                       for row in preview.rows_ok])
        groups = group_rows(preview.rows_ok)
        fresh = [g for g in groups if g["requisites"].get("inn") not in known]
        created = store.insert_clients(
            self.db, [(g["client"], g["requisites"], {}) for g in fresh], user_id, lang,
            "import")
        new_ids = iter(created)
        client_ids = [known.get(g["requisites"].get("inn")) or next(new_ids) for g in groups]
        new_contacts = self._contacts_to_add(groups, client_ids, set(created))
        store.insert_contacts(self.db, new_contacts, user_id, "import")
        completed = {client_id for client_id, _ in new_contacts} - set(created)
        result: dict[str, Any] = {
            "created": len(created), "updated": len(completed),
            "contacts_added": len(new_contacts),
            "skipped_rows": sorted({e.row_number for e in preview.errors}),
            "errors": [vars(e) for e in preview.errors], "client_ids": client_ids}
        stored.status = "done"
        stored.content = b""  # the clients are in the database now; the file is not needed
        stored.result = {k: v for k, v in result.items() if k != "client_ids"}
        stored.finished_at = clock.now()
        return result

    def _contacts_to_add(self, groups: list[dict[str, Any]], client_ids: list[int],
                         created: set[int]) -> list[tuple[int, dict[str, Any]]]:
        """(client_id, contact) for every imported contact its client does not have yet:
        one with the same name and phones is not added twice."""
        have: set[tuple[int, str, tuple[str, ...]]] = set()
        existing = [client_id for client_id in client_ids if client_id not in created]
        if existing:
            rows = self.db.scalars(select(Contact).where(Contact.client_id.in_(existing))
                                   .options(selectinload(Contact.phones)))
            have = {(c.client_id, c.name.casefold(), tuple(p.e164 for p in c.phones))
                    for c in rows}
        wanted = []
        for group, client_id in zip(groups, client_ids, strict=True):
            for contact in group["contacts"]:
                key = (client_id, contact["name"].casefold(), tuple(contact["phones"]))
                if key not in have:
                    have.add(key)
                    wanted.append((client_id, contact))
        return wanted

    @rpc
    def export_clients(self, query: str = "", filters: dict[str, Any] | None = None,
                       sort: str = "name", fmt: str = "csv", lang: str = "ru",
                       manager_order: list[int] | None = None) -> dict[str, Any]:
        """The filtered list as a CSV or XLSX file (base64), one row per contact, in the
        columns an import reads back."""
        q = parse_list_query(query, filters, sort, 1, 1, manager_order or ())
        page_stmt, _ = list_statements(q)
        stmt = (page_stmt.offset(None).limit(EXPORT_LIMIT + 1)
                .options(selectinload(Client.contacts).selectinload(Contact.phones),
                         selectinload(Client.contacts).selectinload(Contact.emails)))
        clients = self.db.scalars(stmt).all()
        rows = [row for c in clients[:EXPORT_LIMIT] for row in client_rows(client_dict(c))]
        content = export_rows(rows, EXPORT_COLUMNS, fmt, check_lang(lang))
        stamp = clock.now().strftime("%Y%m%d-%H%M")
        return {"filename": f"clients-{stamp}.{fmt}", "rows": len(rows),
                "clients": min(len(clients), EXPORT_LIMIT),
                "truncated": len(clients) > EXPORT_LIMIT,
                "content_b64": base64.b64encode(content).decode("ascii")}

    # -- what other services tell us (C6) -----------------------------------------------
    def _client_of(self, event: Envelope) -> int | None:
        raw = event.data.get("client_id")
        if raw is None:
            return None  # a call with an unknown number, a reminder on no client
        return store.survivor_id(self.db, identifier(raw, "client_id"))

    @consumes("telephony", "call_finished")
    def on_call_finished(self, event: Envelope) -> None:
        """Any call with a client's contact counts as contact with the client."""
        client_id = self._client_of(event)
        if client_id is not None:
            store.touch(self.db, client_id, event_time(event.data.get("started_at"),
                                                       "started_at"))

    @consumes("deals", "reminder_created")
    def on_reminder_created(self, event: Envelope) -> None:
        client_id = self._client_of(event)
        if client_id is None:
            return
        # a completion that overtook the creation already wrote the row: keep it
        self.db.execute(insert(ClientReminder).values(
            reminder_id=self._reminder_id(event), client_id=client_id,
            deal_id=event.data.get("deal_id")).on_conflict_do_nothing())

    @consumes("deals", "reminder_completed")
    def on_reminder_completed(self, event: Envelope) -> None:
        client_id = self._client_of(event)
        if client_id is None:
            return
        done = event_time(event.data.get("completed_at") or event.occurred_at, "completed_at")
        self.db.execute(insert(ClientReminder).values(
            reminder_id=self._reminder_id(event), client_id=client_id,
            deal_id=event.data.get("deal_id"), completed_at=done)
            .on_conflict_do_update(index_elements=[ClientReminder.reminder_id],
                                   set_={"completed_at": done}))
        store.touch(self.db, client_id, done)

    @consumes("analytics", "client_segments_changed")
    def on_client_segments_changed(self, event: Envelope) -> None:
        """The list's RFM segment filter reads the segments analytics computed; an older
        computation arriving late changes nothing."""
        store.set_segments(self.db, segment_changes(event.data))

    @staticmethod
    def _reminder_id(event: Envelope) -> str:
        reminder_id = event.data.get("reminder_id")
        if reminder_id is None:
            raise ValidationError("В событии не сказано, какая это задача.", field="reminder_id",
                                  key="required")
        return str(reminder_id)

    # ---------------------------------------------- groups of companies and relations
    # (rules in groups.py)
    @rpc
    def list_client_groups(self) -> list[dict[str, Any]]:
        """Every group with the number of its live clients, by name."""
        counts = dict(self.db.execute(
            select(models.Client.client_group_id, func.count())
            .where(models.Client.merged_into.is_(None),
                   models.Client.client_group_id.isnot(None))
            .group_by(models.Client.client_group_id)).all())
        return [{"id": grp.id, "name": grp.name, "clients": counts.get(grp.id, 0)}
                for grp in self.db.scalars(select(models.ClientGroup)
                                           .order_by(models.ClientGroup.name))]

    @rpc
    def save_client_group(self, data: dict[str, Any], user_id: int | None = None
                          ) -> dict[str, Any]:
        """Create (no ``id``) or rename a group; names are unique."""
        if not isinstance(data, dict):
            raise ValidationError("Ожидается объект.", "group", key="object.invalid")
        name = groups.group_name(data.get("name"))
        group_id = identifier(data.get("id"), "id", required=False)
        taken = self.db.scalar(select(models.ClientGroup.id)
                               .where(models.ClientGroup.name == name))
        if taken is not None and taken != group_id:
            raise ValidationError("Группа с таким названием уже есть.", "name",
                                  key="client_group.name_taken", params={"name": name})
        if group_id is None:
            grp = models.ClientGroup(name=name, created_by=user_id)
            self.db.add(grp)
        else:
            found = self.db.get(models.ClientGroup, group_id)
            if found is None:
                raise NotFound("client group not found", entity="client_group", id=group_id)
            grp = found
            grp.name = name
        self.db.flush()
        return {"id": grp.id, "name": grp.name}

    @rpc
    def set_client_group(self, client_id: int, group_id: int | None,
                         user_id: int | None = None) -> dict[str, Any]:
        """Put a client into a group (None: out of any); history and a
        ``client_group_changed`` event when it moves."""
        client = store.find_client(self.db, client_id, lock=True)
        self.may.check("clients", [client.manager_id], f"client {client.id}")
        new = identifier(group_id, "client_group_id", required=False)
        if new is not None and self.db.get(models.ClientGroup, new) is None:
            raise ValidationError("Нет такой группы компаний.", "client_group_id",
                                  key="client_group.unknown", params={"id": new})
        old = client.client_group_id
        if old != new:
            client.client_group_id = new
            client.version += 1
            client.updated_by = user_id
            self.db.add(models.ClientHistory(client_id=client.id, field="client_group_id",
                                             old_value=None if old is None else str(old),
                                             new_value=None if new is None else str(new),
                                             user_id=user_id, source="ui"))
            self.db.emit("client_group_changed", {
                "client_id": client.id, "client_group_id": new, "previous_group_id": old,
                "version": client.version, "user_id": user_id})
        self.db.flush()
        return client_dict(client, with_contacts=False)

    @rpc
    def add_client_relation(self, client_id: int, related_id: int, kind: str,
                            user_id: int | None = None) -> list[dict[str, Any]]:
        """``related_id`` is the ``kind`` (parent / subsidiary / partner) of ``client_id``;
        the client's relations after it.  The same relation twice is one; a parent loop
        is refused."""
        link = groups.relation(client_id, related_id, kind)
        me = store.find_client(self.db, client_id, lock=True)
        self.may.check("clients", [me.manager_id], f"client {me.id}")
        store.find_client(self.db, related_id)
        if link.kind == "parent":
            parents: dict[int, list[int]] = {}
            for child, parent in self.db.execute(
                    select(models.ClientRelation.client_id, models.ClientRelation.related_id)
                    .where(models.ClientRelation.kind == "parent")):
                parents.setdefault(child, []).append(parent)
            if groups.would_cycle(link, parents):
                raise ValidationError("Такая связь замкнёт круг родителей.", "related_id",
                                      key="relation.cycle")
        self.db.execute(insert(models.ClientRelation).values(
            client_id=link.client_id, related_id=link.related_id, kind=link.kind,
            created_by=user_id).on_conflict_do_nothing())
        return self.client_relations(me.id)

    @rpc
    def remove_client_relation(self, client_id: int, relation_id: int,
                               user_id: int | None = None) -> list[dict[str, Any]]:
        me = store.find_client(self.db, client_id, lock=True)
        self.may.check("clients", [me.manager_id], f"client {me.id}")
        rid = identifier(relation_id, "relation_id")
        self.db.execute(delete(models.ClientRelation).where(
            models.ClientRelation.id == rid,
            (models.ClientRelation.client_id == me.id)
            | (models.ClientRelation.related_id == me.id)))
        return self.client_relations(me.id)

    @rpc
    def client_relations(self, client_id: int) -> list[dict[str, Any]]:
        """The client's parents, subsidiaries (divisions) and partners, each {`id` (the
        relation), `client_id`, `name`, `kind`}, and the group's other members are asked
        with ``search_clients`` filtered by ``group_id``."""
        cid = identifier(client_id, "client_id")
        rows = self.db.execute(
            select(models.ClientRelation.id, models.ClientRelation.client_id,
                   models.ClientRelation.related_id, models.ClientRelation.kind)
            .where((models.ClientRelation.client_id == cid)
                   | (models.ClientRelation.related_id == cid))).all()
        shown = groups.view(cid, [tuple(r) for r in rows])
        names = dict(self.db.execute(select(models.Client.id, models.Client.name).where(
            models.Client.id.in_([r["client_id"] for r in shown]))).all()) if shown else {}
        return [{**r, "name": names.get(r["client_id"], "")} for r in shown]
