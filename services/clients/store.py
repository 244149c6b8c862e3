"""Persistence shared by the clients service's entrypoints: creating clients and contacts
(forms, API and file import alike), the change history, duplicates, the last-contact
clock.  Every function works inside the caller's unit of work and commits nothing.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, String, delete, func, insert, literal, or_, select, update
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import selectinload

from services.clients.domain.clients import auto_name, duplicate_keys
from services.clients.domain.history import change_map, changes, contact_summary
from services.clients.domain.listing import ListQuery, PhoneQuery, search_text
from services.clients.domain.phones import phone_base
from services.clients.domain.segments import SegmentChanges
from services.clients.models import (
    Client,
    ClientComment,
    ClientGroup,
    ClientHistory,
    ClientImport,
    ClientRelation,
    ClientReminder,
    Contact,
    ContactEmail,
    ContactPhone,
    client_number_seq,
    person_phone,
)
from services.clients.schemas import contact_dict
from services.clients.search import (
    FEW_MATCHES,
    common_match_page,
    contact_ids,
    duplicates_of,
    first_matches,
    list_statements,
    page_among,
    substring_search,
)
from services.kit import clock
from services.kit.dependencies import Work
from services.kit.errors import Conflict, NotFound


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


def survivors(db: Work, client_ids: Iterable[int]) -> dict[int, int]:
    """{id: where it lives now} for the given ids that exist (a merged one maps to its
    survivor), in one query unless some were merged."""
    wanted = sorted(set(client_ids))
    found = dict(db.execute(select(Client.id, Client.merged_into)
                            .where(Client.id.in_(wanted))).all())
    result = {}
    for client_id, merged_into in found.items():
        target = client_id if merged_into is None else survivor_id(db, client_id)
        if target is not None:
            result[client_id] = target
    return result


def set_segments(db: Work, changes: SegmentChanges) -> int:
    """Take analytics' segments where they are newer than what each client has; a
    change about a merged client goes to its survivor unless the survivor has its own
    in the same event.  Returns the clients changed."""
    where = survivors(db, changes.segments)
    targets: dict[int, str | None] = {}
    for client_id, segment in changes.segments.items():
        target = where.get(client_id)
        if target is not None and (target == client_id or target not in changes.segments):
            targets[target] = segment
    if not targets:
        return 0
    ids = sorted(targets)
    wanted = (select(func.unnest(literal(ids, ARRAY(BigInteger))).label("id"),
                     func.unnest(literal([targets[i] for i in ids], ARRAY(String)))
                     .label("segment"))
              .subquery())
    done = db.execute(
        update(Client).where(Client.id == wanted.c.id,
                             or_(Client.rfm_computed_at.is_(None),
                                 Client.rfm_computed_at < changes.computed_at))
        .values(rfm_segment=wanted.c.segment, rfm_computed_at=changes.computed_at,
                updated_at=Client.updated_at),
        execution_options={"synchronize_session": False})
    return int(done.rowcount or 0)  # type: ignore[attr-defined]


def rename(client: Client, name: str) -> None:
    client.name = name
    client.search_name = search_text(name)


def write_history(db: Work, client_id: int, rows: Iterable[tuple[str, Any, Any]],
                  user_id: int | None, source: str, contact_id: int | None = None) -> None:
    for field, old, new in rows:
        db.add(ClientHistory(client_id=client_id, field=field, old_value=old, new_value=new,
                             user_id=user_id, source=source, contact_id=contact_id))


def _history_rows(db: Work, rows: list[dict[str, Any]]) -> None:
    if rows:
        db.execute(insert(ClientHistory), rows)


NewClient = tuple[Mapping[str, Any], dict[str, Any], Mapping[str, Any]]


def insert_clients(db: Work, items: Sequence[NewClient], user_id: int | None, lang: str,
                   source: str) -> list[int]:
    """Insert checked clients ((fields, requisites, assignment) each) in a few statements,
    naming the nameless "Клиент №N"; record and announce each.  Returns their ids in order.

    One path for a form's single client and a file's thousands: row by row, an import of
    10 000 clients spent a minute on round trips.
    """
    if not items:
        return []
    numbers = list(db.scalars(select(client_number_seq.next_value())
                              .select_from(func.generate_series(1, len(items)))))
    rows = []
    for (fields, requisites, assignment), number in zip(items, numbers, strict=True):
        name = fields.get("name") or auto_name(number, lang)
        rows.append({"number": number, "kind": fields["kind"], "name": name,
                     "search_name": search_text(name), "inn": requisites.get("inn"),
                     "requisites": requisites, "address": fields.get("address"),
                     "city": assignment.get("city"), "website": fields.get("website"),
                     "manager_id": assignment.get("manager_id") or user_id,
                     "created_by": user_id, "updated_by": user_id, "version": 1})
    ids = list(db.scalars(insert(Client).returning(Client.id, sort_by_parameter_order=True),
                          rows))
    _history_rows(db, [{"client_id": client_id, "field": "created", "new_value": row["name"],
                        "user_id": user_id, "source": source}
                       for client_id, row in zip(ids, rows, strict=True)])
    for client_id, row in zip(ids, rows, strict=True):
        db.emit("client_created", {"client_id": client_id, "name": row["name"],
                                   "inn": row["inn"], "manager_id": row["manager_id"],
                                   "kind": row["kind"], "client_group_id": None})
    refresh_reach(db, ids)
    return ids


def insert_contacts(db: Work, items: Sequence[tuple[int, Mapping[str, Any]]],
                    user_id: int | None, source: str) -> list[dict[str, Any]]:
    """Insert checked contacts ((client_id, contact) each) in a few statements, record and
    announce each; returns them as contact dicts, in order."""
    if not items:
        return []
    ids = list(db.scalars(
        insert(Contact).returning(Contact.id, sort_by_parameter_order=True),
        [{"client_id": client_id, "name": c["name"], "position": c.get("position"),
          "created_by": user_id} for client_id, c in items]))
    made = [{"id": contact_id, "client_id": client_id, "name": c["name"],
             "position": c.get("position"), "phones": list(c.get("phones") or []),
             "emails": list(c.get("emails") or [])}
            for contact_id, (client_id, c) in zip(ids, items, strict=True)]
    phones = [{"contact_id": c["id"], "e164": p} for c in made for p in c["phones"]]
    emails = [{"contact_id": c["id"], "email": e} for c in made for e in c["emails"]]
    for table, rows in ((ContactPhone, phones), (ContactEmail, emails)):
        if rows:
            db.execute(insert(table), rows)
    _history_rows(db, [{"client_id": c["client_id"], "field": "contact",
                        "new_value": contact_summary(c), "user_id": user_id,
                        "source": source, "contact_id": c["id"]} for c in made])
    for contact in made:
        db.emit("contact_added", {"client_id": contact["client_id"], "contact": contact})
    refresh_reach(db, sorted({c["client_id"] for c in made}))
    return made


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
    contact.updated_at = clock.now()
    db.flush()
    refresh_reach(db, [contact.client_id])
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


def refresh_reach(db: Work, client_ids: list[int]) -> None:
    """Recompute the list's phone and e-mail of clients after their contacts or own
    requisites changed: the first contact's first, else a private person's own."""
    def first(column: Any) -> Any:
        table = column.class_
        return (select(column).join(Contact, table.contact_id == Contact.id)
                .where(Contact.client_id == Client.id)
                .order_by(Contact.id, table.id).limit(1).scalar_subquery())

    db.execute(update(Client).where(Client.id.in_(client_ids)).values(
        main_phone=func.coalesce(first(ContactPhone.e164), person_phone),
        main_email=func.coalesce(first(ContactEmail.email), Client.requisites["email"].astext),
        updated_at=Client.updated_at), execution_options={"synchronize_session": False})


def touch(db: Work, client_id: int, at: datetime) -> None:
    """Move the client's last contact forward to ``at`` (never back, never past now):
    events may arrive late and in any order."""
    at = min(at, clock.now())
    db.execute(update(Client).where(Client.id == client_id)
               .values(last_contact_at=func.greatest(Client.last_contact_at, at),
                       updated_at=Client.updated_at))


def open_reminders(db: Work, client_id: int) -> int:
    return int(db.scalar(select(func.count()).select_from(ClientReminder).where(
        ClientReminder.client_id == client_id, ClientReminder.completed_at.is_(None))) or 0)


# -- groups of companies and relations ---------------------------------------------------
def group_sizes(db: Work) -> dict[int, int]:
    """{group id: its live clients}."""
    return dict(db.execute(
        select(Client.client_group_id, func.count())
        .where(Client.merged_into.is_(None), Client.client_group_id.isnot(None))
        .group_by(Client.client_group_id)).all())


def all_groups(db: Work) -> list[ClientGroup]:
    return list(db.scalars(select(ClientGroup).order_by(ClientGroup.name)))


def group_named(db: Work, name: str) -> int | None:
    return db.scalar(select(ClientGroup.id).where(ClientGroup.name == name))


def parents(db: Work) -> dict[int, list[int]]:
    """{client: its parents} over every parent link (a new link is checked for loops)."""
    found: dict[int, list[int]] = {}
    for child, parent in db.execute(select(ClientRelation.client_id, ClientRelation.related_id)
                                    .where(ClientRelation.kind == "parent")):
        found.setdefault(child, []).append(parent)
    return found


def relations_of(db: Work, client_id: int) -> list[tuple[int, int, int, str]]:
    """(relation id, client, related, kind) of every relation on either side."""
    rows = db.execute(select(ClientRelation.id, ClientRelation.client_id,
                             ClientRelation.related_id, ClientRelation.kind)
                      .where((ClientRelation.client_id == client_id)
                             | (ClientRelation.related_id == client_id)))
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def remove_relation(db: Work, client_id: int, relation_id: int) -> None:
    db.execute(delete(ClientRelation).where(
        ClientRelation.id == relation_id,
        (ClientRelation.client_id == client_id) | (ClientRelation.related_id == client_id)))


def names(db: Work, client_ids: list[int]) -> dict[int, str]:
    if not client_ids:
        return {}
    return dict(db.execute(select(Client.id, Client.name)
                           .where(Client.id.in_(client_ids))).all())


# -- reminders of the deals service (the "no open reminder" filter) ---------------------
def open_reminder(db: Work, reminder_id: str, client_id: int, deal_id: object) -> None:
    # a completion that overtook the creation already wrote the row: keep it
    db.execute(pg_insert(ClientReminder).values(
        reminder_id=reminder_id, client_id=client_id, deal_id=deal_id)
        .on_conflict_do_nothing())


def complete_reminder(db: Work, reminder_id: str, client_id: int, deal_id: object,
                      done: datetime) -> None:
    db.execute(pg_insert(ClientReminder).values(
        reminder_id=reminder_id, client_id=client_id, deal_id=deal_id, completed_at=done)
        .on_conflict_do_update(index_elements=[ClientReminder.reminder_id],
                               set_={"completed_at": done}))


# -- import ------------------------------------------------------------------------------
def clients_by_inn(db: Work, inns: Iterable[str | None]) -> dict[str, int]:
    """{INN: the newest live client with it}."""
    wanted = sorted({inn for inn in inns if inn})
    if not wanted:
        return {}
    rows = db.execute(select(Client.inn, Client.id)
                      .where(Client.inn.in_(wanted), Client.merged_into.is_(None))
                      .order_by(Client.id.desc()))
    return {inn: client_id for inn, client_id in rows}


def contact_keys(db: Work, client_ids: list[int]) -> set[tuple[int, str, tuple[str, ...]]]:
    """(client, case-folded name, phones) of these clients' contacts."""
    if not client_ids:
        return set()
    rows = db.scalars(select(Contact).where(Contact.client_id.in_(client_ids))
                      .options(selectinload(Contact.phones)))
    return {(c.client_id, c.name.casefold(), tuple(p.e164 for p in c.phones)) for c in rows}


def previewed_import(db: Work, import_id: int) -> ClientImport:
    stored = db.scalars(select(ClientImport).where(ClientImport.id == import_id)
                        .with_for_update()).first()
    if stored is None:
        raise NotFound(f"import {import_id} not found", entity="import", id=import_id)
    return stored


def drop_stale_imports(db: Work, before: datetime) -> None:
    db.execute(delete(ClientImport).where(ClientImport.status == "previewed",
                                          ClientImport.created_at < before))


# -- the list ----------------------------------------------------------------------------
def custom_plans(db: Work) -> None:
    """Plan this transaction's queries for their own parameters.  psycopg prepares a
    statement run five times, and PostgreSQL then settles on one generic plan for it: a
    plan for "any fragment", which for ``LIKE '%а%'`` (every row) and ``LIKE '%ромашка 17%'``
    (one row) cannot both be right, and the short, common fragments paid for it."""
    db.execute(sql("SET LOCAL plan_cache_mode = force_custom_plan"))


def list_page(db: Work, q: ListQuery, count: bool
              ) -> tuple[list[Client], int | None, bool]:
    """One page of the list, the count of all that match when asked, and whether that
    count is exact (a common fragment's is search.FEW_MATCHES: "more than")."""
    if substring_search(q):
        custom_plans(db)
        ids = [row[0] for row in db.execute(first_matches(q, FEW_MATCHES + 1))]
        if len(ids) > FEW_MATCHES:
            return list(db.scalars(common_match_page(q))), FEW_MATCHES if count else None, False
        clients = list(db.scalars(page_among(q, ids))) if ids else []
        return clients, len(ids) if count else None, True
    page_stmt, total_stmt = list_statements(q)
    clients = list(db.scalars(page_stmt).all())
    return clients, (db.scalar(total_stmt) if count else None), True


def export_page(db: Work, q: ListQuery, limit: int) -> list[Client]:
    """Up to ``limit`` clients of the list with their contacts, phones and e-mails."""
    page_stmt, _ = list_statements(q)
    stmt = (page_stmt.offset(None).limit(limit)
            .options(selectinload(Client.contacts).selectinload(Contact.phones),
                     selectinload(Client.contacts).selectinload(Contact.emails)))
    return list(db.scalars(stmt).all())


# -- contacts ----------------------------------------------------------------------------
def find_contact(db: Work, contact_id: int, lock: bool = False) -> Contact:
    stmt = select(Contact).where(Contact.id == contact_id)
    contact = db.scalars(stmt.with_for_update(of=Contact) if lock else stmt).first()
    if contact is None:
        raise NotFound(f"contact {contact_id} not found", entity="contact", id=contact_id)
    return contact


def contact_by_phone(db: Work, e164: str) -> Contact | None:
    """A live client's contact with this number, or else with it and an extension."""
    base = e164.split(";", 1)[0]
    return db.scalars(
        select(Contact).join(ContactPhone).join(Client)
        .where(Client.merged_into.is_(None),
               (ContactPhone.e164 == e164) | ContactPhone.e164.like(base + ";ext=%"))
        .order_by((ContactPhone.e164 != e164), Contact.id).limit(1)).first()


def contacts_matching(db: Work, text: str, phone: PhoneQuery | None, email: str | None,
                      limit: int) -> list[tuple[Contact, str]]:
    """(contact, its client's name) of live clients, by name (search.contact_ids)."""
    custom_plans(db)
    ids = contact_ids(text, phone, email).subquery()
    stmt = (select(Contact, Client.name).join(Client)
            .options(selectinload(Contact.phones), selectinload(Contact.emails))
            .where(Contact.id.in_(select(ids.c[0])), Client.merged_into.is_(None))
            .order_by(Contact.name, Contact.id).limit(limit))
    return [(c, name) for c, name in db.execute(stmt)]


# (client, contact or None, reason, value): who a new enquiry may already be
Hit = tuple[Client, Contact | None, str, str]


class Party(NamedTuple):
    """The few columns a duplicate's answer shows of a client or contact (the batched
    look-ups read these instead of whole rows)."""

    id: int
    name: str
    inn: str | None = None


# Each look-up is a LATERAL subquery per asked value, so every value gets its own `limit`
# and its own index scans, as the one-value queries above do.  The phone's extension
# ("+7...;ext=12") is the prefix range the planner derives from LIKE 'value;ext=%' when the
# pattern is a constant: here the value comes from the outer row, so the range is spelled
# out (';ext>' is the first string after every ';ext=...'); the LIKE stays as the check.
_MANY = """
SELECT q.v, m.client_id, m.client_name, m.inn, m.contact_id, m.contact_name
FROM unnest(CAST(:values AS text[])) AS q(v)
CROSS JOIN LATERAL ({inner} LIMIT :limit) AS m
"""
_BY_PHONE = """
SELECT c.id AS client_id, c.name AS client_name, c.inn, ct.id AS contact_id,
       ct.name AS contact_name
FROM contact_phones p JOIN contacts ct ON ct.id = p.contact_id
JOIN clients c ON c.id = ct.client_id
WHERE c.merged_into IS NULL
  AND (p.e164 = q.v OR (p.e164 ~>=~ (q.v || ';ext=') AND p.e164 ~<~ (q.v || ';ext>')
                        AND p.e164 LIKE (q.v || ';ext=%')))
ORDER BY ct.id"""
_BY_EMAIL = """
SELECT c.id AS client_id, c.name AS client_name, c.inn, ct.id AS contact_id,
       ct.name AS contact_name
FROM contact_emails e JOIN contacts ct ON ct.id = e.contact_id
JOIN clients c ON c.id = ct.client_id
WHERE c.merged_into IS NULL AND e.email = q.v
ORDER BY ct.id"""
_BY_INN = """
SELECT c.id AS client_id, c.name AS client_name, c.inn, NULL::bigint AS contact_id,
       NULL::text AS contact_name
FROM clients c WHERE c.merged_into IS NULL AND c.inn = q.v
ORDER BY c.id"""
_LOOKUPS = {"phone": _BY_PHONE, "email": _BY_EMAIL, "inn": _BY_INN}


def hits_many(db: Work, reason: str, values: Iterable[str], limit: int
              ) -> dict[str, list[tuple[Party, Party | None, str, str]]]:
    """``contacts_with_phone`` / ``contacts_with_email`` / ``clients_with_inn`` (``reason``)
    for many values in one statement: the hits of each distinct value, in the same order."""
    asked = sorted(set(values))
    found: dict[str, list[tuple[Party, Party | None, str, str]]] = {v: [] for v in asked}
    if not asked:
        return found
    rows = db.execute(sql(_MANY.format(inner=_LOOKUPS[reason])),
                      {"values": asked, "limit": limit})
    for value, client_id, client_name, inn, contact_id, contact_name in rows:
        contact = Party(contact_id, contact_name) if contact_id is not None else None
        found[value].append((Party(client_id, client_name, inn), contact, reason, value))
    return found


def contacts_with_phone(db: Work, e164: str, limit: int) -> list[Hit]:
    rows = db.execute(select(Contact, Client).join(ContactPhone).join(Client)
                      .where(Client.merged_into.is_(None),
                             (ContactPhone.e164 == e164) | ContactPhone.e164.like(e164 + ";ext=%"))
                      .order_by(Contact.id).limit(limit))
    return [(client, contact, "phone", e164) for contact, client in rows]


def contacts_with_email(db: Work, address: str, limit: int) -> list[Hit]:
    rows = db.execute(select(Contact, Client).join(ContactEmail).join(Client)
                      .where(Client.merged_into.is_(None),
                             ContactEmail.email == address)  # stored lower-cased
                      .order_by(Contact.id).limit(limit))
    return [(client, contact, "email", address) for contact, client in rows]


def clients_with_inn(db: Work, inn: str, limit: int) -> list[Hit]:
    rows = db.scalars(select(Client).where(Client.merged_into.is_(None), Client.inn == inn)
                      .order_by(Client.id).limit(limit))
    return [(client, None, "inn", inn) for client in rows]


# -- changing a client -------------------------------------------------------------------
def apply_record(db: Work, client: Client, record: Mapping[str, Any],
                 requisites: dict[str, Any], user_id: int | None) -> None:
    """Write a checked client record (domain.history.client_record's shape) on the row."""
    if record["name"] != client.name:
        rename(client, record["name"])
    client.kind = record["kind"]
    client.website = record["website"]
    client.address = record["address"]
    client.city = record["city"]
    client.manager_id = record["manager_id"]
    client.requisites = requisites
    client.inn = requisites.get("inn")
    client.updated_by = user_id
    client.version += 1
    db.flush()


def announce_update(db: Work, client: Client, rows: list[tuple[str, Any, Any]],
                    user_id: int | None) -> None:
    db.emit("client_updated", {
        "client_id": client.id, "changes": change_map(rows), "inn": client.inn,
        "name": client.name, "manager_id": client.manager_id, "kind": client.kind,
        "client_group_id": client.client_group_id, "user_id": user_id})


def move_belongings(db: Work, from_id: int, to_id: int) -> None:
    """A merged client's contacts, comments, reminders and history go to the survivor."""
    for model in (Contact, ClientComment, ClientReminder, ClientHistory):
        db.execute(update(model).where(model.client_id == from_id).values(client_id=to_id))
    db.expire_all()


def comments(db: Work, client_id: int, limit: int) -> list[ClientComment]:
    return list(db.scalars(select(ClientComment).where(ClientComment.client_id == client_id)
                           .order_by(ClientComment.created_at.desc(), ClientComment.id.desc())
                           .limit(limit)))


def history(db: Work, client_id: int, limit: int) -> list[ClientHistory]:
    return list(db.scalars(select(ClientHistory).where(ClientHistory.client_id == client_id)
                           .order_by(ClientHistory.changed_at.desc(), ClientHistory.id.desc())
                           .limit(limit)))
