"""SQL of the client list (C4, C6) and of duplicate lookups (C7), built from checked
requests (``domain.listing.ListQuery``).  Statements only: the service runs them.

Each search runs on an index made for it (see models.py): names and phone fragments on
pg_trgm trigrams, whole numbers and INN prefixes on ``varchar_pattern_ops`` b-trees.  The
one search box asks for "a name, an INN or a phone": the candidates of each are united
by id rather than OR-ed, so every part keeps its own index.
"""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Text,
    and_,
    any_,
    exists,
    func,
    literal,
    or_,
    select,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY, array

from services.clients.domain.listing import ListQuery, PhoneQuery
from services.clients.models import (
    Client,
    ClientReminder,
    Contact,
    ContactEmail,
    ContactPhone,
    person_phone,
)
from services.kit import clock

EXTENSION = ";ext="
NOT_NULL = {"number", "name", "kind", "created_at"}


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(column: Any, text: str) -> ColumnElement[bool]:
    return column.like(f"%{like_escape(text)}%", escape="\\")


def phone_condition(column: Any, phone: PhoneQuery) -> ColumnElement[bool]:
    """A whole number matches itself and its forms with an extension; a fragment is a
    substring (trigram index)."""
    if phone.exact:
        return or_(column == phone.key,
                   column.like(like_escape(phone.key + EXTENSION) + "%", escape="\\"))
    return contains(column, phone.key)


SHORT = 2  # fragments this long are found on search_grams, longer ones by trigrams


def name_contains(text: str, walk: bool = False) -> ColumnElement[bool]:
    """The search name contains ``text`` (already ``search_text``-folded): a fragment of
    one or two characters is one of the name's grams (a GIN lookup of exact keys), a
    longer one a trigram-indexed LIKE.

    ``walk``: checked on each entry of a walk of the name index in list order instead
    (a common fragment's page).  ``strpos`` reads the name off the index entry, as LIKE
    does, and finds it there in two thirds of LIKE's time (the walk over the 120,000
    names before the first "ооо" went from 20 to 13 ms); it is the same test: LIKE
    '%x%' under a deterministic collation is byte containment, and so is being one of
    the grams (every one- and two-character part of the name)."""
    if walk:
        return func.strpos(Client.search_name, text) > 0
    if 0 < len(text) <= SHORT:
        # The same test twice over, for the planner: on the grams alone it takes "12" for
        # one name in ten (the grams' statistics) and scans the table, testing every
        # row's ~80 grams (18 ms to find 1,001 of them); beside strpos it expects a third
        # of that and takes the grams' index (3 ms).  A common one ("а") is scanned as
        # before, a rare one ("ъ") found on the index as before.
        return and_(Client.search_grams.contains(literal([text], ARRAY(Text))),
                    func.strpos(Client.search_name, text) > 0)
    return contains(Client.search_name, text)


def ids_by_phone(phone: PhoneQuery) -> Select[Any]:
    by_contact = (select(Contact.client_id.label("id")).join(ContactPhone)
                  .where(phone_condition(ContactPhone.e164, phone)))
    by_person = select(Client.id).where(phone_condition(person_phone, phone))
    return union(by_contact, by_person)  # type: ignore[return-value]


def contact_ids(text: str, phone: PhoneQuery | None, email: str | None) -> Any:
    """Contacts of the global search: a part of the name (trigram index on lower(name)),
    a phone in any format, an exact e-mail; each on its own index, united by id."""
    parts: list[Select[Any]] = [select(Contact.id).where(
        contains(func.lower(Contact.name), text.lower()))]
    if phone is not None:
        parts.append(select(ContactPhone.contact_id).where(
            phone_condition(ContactPhone.e164, phone)))
    if email:
        parts.append(select(ContactEmail.contact_id).where(ContactEmail.email == email))
    return union(*parts) if len(parts) > 1 else parts[0]


def ids_by_inn_prefix(inn: str) -> Select[Any]:
    return select(Client.id).where(Client.inn.like(like_escape(inn) + "%", escape="\\"))


def ids_by_text(q: ListQuery, limit: int | None = None) -> Any:
    """Ids matching the search box, each part on its own index; with ``limit``, each
    part stops at that many (enough to tell "few" from "many")."""
    assert q.text is not None
    parts: list[Select[Any]] = [select(Client.id).where(name_contains(q.text))]
    if q.text_inn:
        parts.append(ids_by_inn_prefix(q.text_inn))
    if q.text_phone:
        parts.append(select(ids_by_phone(q.text_phone).subquery().c.id))
    if limit is not None:
        parts = [select(part.limit(limit).subquery().c[0]) for part in parts]
    return union(*parts) if len(parts) > 1 else parts[0]


def text_per_row(q: ListQuery, walk: bool = False) -> ColumnElement[bool]:
    """The search box as one condition on each row, for a walk in list order that
    stops at a page (the union of ids_by_text would be built whole first)."""
    assert q.text is not None
    parts = [name_contains(q.text, walk)]
    if q.text_inn:
        parts.append(Client.inn.like(like_escape(q.text_inn) + "%", escape="\\"))
    if q.text_phone:
        parts.append(Client.id.in_(ids_by_phone(q.text_phone)))
    return or_(*parts)


def day_start(day: Any) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def conditions(q: ListQuery, now: datetime, text_limit: int | None = None,
               per_row: bool = False, walk: bool = False) -> list[ColumnElement[bool]]:
    """``walk``: the name is checked on each entry of the list-order walk (per_row)."""
    where: list[ColumnElement[bool]] = [Client.merged_into.is_(None)]
    if q.text:
        where.append(text_per_row(q, walk) if per_row
                     else Client.id.in_(ids_by_text(q, text_limit)))
    if q.name:
        where.append(name_contains(q.name, walk))
    if q.inn:
        where.append(Client.inn.like(like_escape(q.inn) + "%", escape="\\"))
    if q.phone:
        where.append(Client.id.in_(ids_by_phone(q.phone)))
    if q.manager_id is not None:
        where.append(Client.manager_id == q.manager_id)
    if q.kind:
        where.append(Client.kind == q.kind)
    if q.city:
        where.append(contains(func.lower(Client.city), q.city))  # trigram index on lower(city)
    if q.created_from:
        where.append(Client.created_at >= day_start(q.created_from))
    if q.created_to:
        where.append(Client.created_at < day_start(q.created_to) + timedelta(days=1))
    if q.neglected_days:
        # A client nobody has talked to yet counts from the day it was created.
        since = now - timedelta(days=q.neglected_days)
        where.append(func.coalesce(Client.last_contact_at, Client.created_at) < since)
    if q.no_open_reminder:
        where.append(~has_open_reminder())
    if q.group_id is not None:
        where.append(Client.client_group_id == q.group_id)
    if q.segment:
        # with merged_into IS NULL: the partial index ix_clients_rfm_segment_name
        where.append(Client.rfm_segment == q.segment)
    if q.ids is not None:
        # one array parameter, however many ids (an IN list would bind each one)
        where.append(Client.id == any_(literal(list(q.ids), ARRAY(BigInteger))))
    return where


def has_open_reminder() -> ColumnElement[bool]:
    return exists().where(ClientReminder.client_id == Client.id,
                          ClientReminder.completed_at.is_(None))


def sort_key(q: ListQuery) -> Any:
    if q.sort == "manager":
        if q.manager_order:
            # the gateway knows the managers' names; it sends their ids in name order
            return func.array_position(array(q.manager_order), Client.manager_id)
        return Client.manager_id
    columns: dict[str, Any] = {
        "number": Client.number, "name": Client.search_name, "kind": Client.kind,
        "inn": Client.inn, "city": func.lower(Client.city), "phone": Client.main_phone,
        "email": Client.main_email, "address": func.lower(Client.address),
        "website": Client.website, "created_at": Client.created_at,
        "last_contact_at": Client.last_contact_at,
    }
    return columns[q.sort]


def order_of(q: ListQuery) -> list[Any]:
    key = sort_key(q)
    if q.sort in NOT_NULL:  # as the indexes are built, so a page is read off an index
        first = key.desc() if q.descending else key.asc()
    else:
        first = key.desc().nulls_last() if q.descending else key.asc().nulls_last()
    return [first, Client.id.desc() if q.descending else Client.id.asc()]


def list_statements(q: ListQuery, now: datetime | None = None
                    ) -> tuple[Select[Any], Select[Any]]:
    """(one page of clients, the count of all that match)."""
    where = and_(*conditions(q, now or clock.now()))
    order = order_of(q)
    page = select(Client).where(where).order_by(*order).offset(q.offset).limit(q.per_page)
    total = select(func.count()).select_from(Client).where(where)
    return page, total


# A substring search (a name part, a city part, a phone fragment) is planned in two steps,
# as the planner cannot know how many rows a fragment matches: first at most
# FEW_MATCHES + 1 matching ids, on whichever index finds them (one trigram scan instead
# of one for the page and one for the count); if that is all of them, the page is sorted
# from those ids and the count is exact.  Otherwise the fragment is common ("ооо", one
# letter): the page is read in list order off the name index (LIMIT-first, ids only, so
# the walk stays inside the index) and the count says "more than FEW_MATCHES" — counting
# every match of a one-letter fragment is a scan of the whole table.
FEW_MATCHES = 1_000


def substring_search(q: ListQuery) -> bool:
    return bool(q.text or q.name or q.city or (q.phone and not q.phone.exact))


def first_matches(q: ListQuery, limit: int, now: datetime | None = None
                  ) -> Select[int, int]:
    # ``number`` is outside the name index: so the planner reads in table order or by
    # trigram rather than walking the name index, where a fragment's matches may all
    # sit far down ("ооо …" after every "ао", "зао", "ип")
    now = now or clock.now()
    # The text's own ids may stop at ``limit`` only when nothing else filters them: with a
    # manager, a segment or a date as well, the text's first ``limit`` matches may hold
    # none of the clients that filter keeps, so the text is then checked on each row.
    alone = len(conditions(q, now)) <= 2  # live clients, and the text
    return (select(Client.id, Client.number)
            .where(*conditions(q, now, text_limit=limit if alone else None,
                               per_row=not alone)).limit(limit))


def page_among(q: ListQuery, ids: list[int]) -> Select[Any]:
    """One page, in list order, of the clients with these ids (they all match)."""
    return (select(Client).where(Client.id == any_(literal(ids, ARRAY(BigInteger))))
            .order_by(*order_of(q)).offset(q.offset).limit(q.per_page))


def common_match_page(q: ListQuery, now: datetime | None = None,
                      walk: bool = True) -> Select[Any]:
    """One page for a fragment that matches many, read in list order."""
    order = order_of(q)
    ids = (select(Client.id).where(*conditions(q, now or clock.now(), per_row=True, walk=walk))
           .order_by(*order)
           .offset(q.offset).limit(q.per_page).scalar_subquery())
    return select(Client).where(Client.id.in_(ids)).order_by(*order)


def duplicates_of(client_id: int | None, inn: str | None,
                  phone_bases: list[str]) -> Select[Any]:
    """(client, reason, value) rows of other live clients with this INN or one of these
    phones (extensions ignored: one switchboard number is worth a look)."""
    parts: list[Any] = []
    if inn:
        parts.append(select(Client.id.label("id"), literal("inn").label("reason"),
                            Client.inn.label("value")).where(Client.inn == inn))
    for base in phone_bases:
        phone = PhoneQuery(base, exact=True)
        parts.append(select(Contact.client_id.label("id"), literal("phone").label("reason"),
                            literal(base).label("value"))
                     .join(ContactPhone).where(phone_condition(ContactPhone.e164, phone)))
        parts.append(select(Client.id.label("id"), literal("phone").label("reason"),
                            literal(base).label("value"))
                     .where(phone_condition(person_phone, phone)))
    combined: Any = union(*parts) if len(parts) > 1 else parts[0]
    found = combined.subquery()
    stmt = (select(Client, found.c.reason, found.c.value).join(found, found.c.id == Client.id)
            .where(Client.merged_into.is_(None)).order_by(Client.id, found.c.reason))
    if client_id is not None:
        stmt = stmt.where(Client.id != client_id)
    return stmt
