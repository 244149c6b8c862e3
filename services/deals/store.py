"""Queries and writes of the deals service's entrypoints: finding deals and their
reference rows, the history, reminders and feed lines, the pages the RPC API answers.
Every function works inside the caller's unit of work and commits nothing; events are the
service's to emit."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, any_, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import joinedload, selectinload

from services.deals import domain, models
from services.deals.models import (
    Calculation,
    Deal,
    DealContact,
    DealHistory,
    DealType,
    FeedEntry,
    LossReason,
    Order,
    Party,
    Reminder,
    Stage,
    Status,
)
from services.deals.schemas import (
    CARD_COLUMNS,
    calculation_dict,
    feed_dict,
    order_dict,
    party_dict,
    reason_dict,
    reminder_dict,
    type_dict,
)
from services.kit import clock
from services.kit.dependencies import Work
from services.kit.errors import NotFound, ValidationError

DUE_BATCH = 200


def now() -> datetime:
    return clock.now()


# ------------------------------------------------------------------------ reference rows

def find_deal(db: Work, deal_id: object, lock: bool = False, contacts: bool = False) -> Deal:
    """``contacts``: for a read that shows them (``deal_dict``), loaded in the same
    statement rather than by a second one when first touched."""
    key = domain.identifier(deal_id, "deal_id")
    stmt = select(Deal).where(Deal.id == key)
    if lock:
        stmt = stmt.with_for_update(of=Deal)
    elif contacts:
        stmt = stmt.options(joinedload(Deal.contacts))
    deal = db.scalars(stmt).unique().first()
    if deal is None:
        raise NotFound(f"deal {key} not found", entity="deal", id=key)
    return deal


def locked_deal(db: Work, deal_id: int) -> Deal | None:
    """The deal an event names, locked (no permission check: events are the system's)."""
    return db.scalars(select(Deal).where(Deal.id == int(deal_id))
                      .with_for_update(of=Deal)).first()


def lock_deals(db: Work, deal_ids: list[Any]) -> dict[int, Deal]:
    """The deals a batch of events names, locked in id order (so two batches never wait
    for each other in a circle), by id; ids that are not numbers are left to the event
    that names them, which refuses it."""
    wanted = sorted({int(i) for i in deal_ids
                     if (isinstance(i, int) or (isinstance(i, str) and i.isascii()
                                                and i.isdigit())) and 0 < int(i) < 2**63})
    if not wanted:
        return {}
    return {deal.id: deal for deal in db.scalars(
        select(Deal).where(Deal.id == any_(literal(wanted, ARRAY(BigInteger))))
        .order_by(Deal.id).with_for_update(of=Deal))}


def add_feed_lines(db: Work, lines: list[dict[str, Any]]) -> None:
    """Feed lines (the columns of FeedEntry) in one statement; a line whose ``ref`` its
    deal has already (of that kind) is left as it was, as ``add_feed`` does."""
    if lines:
        db.execute(insert(FeedEntry).values(
            [{"text": "", "author_id": None, "data": {}, "attachments": [], **line}
             for line in lines]).on_conflict_do_nothing(
            index_elements=["deal_id", "kind", "ref"]))


def statuses(db: Work, lock: bool = False) -> list[Status]:
    """By position; ``lock`` before a renumbering, so two at once do not interleave."""
    query = select(Status).order_by(Status.position, Status.id)
    return list(db.scalars(query.with_for_update() if lock else query))


def status_by_code(db: Work, code: str) -> Status:
    status = db.scalars(select(Status).where(Status.code == str(code))).first()
    if status is None:
        raise ValidationError(f"status: unknown status '{code}'", field="status",
                              key="deal.status_unknown", params={"status": str(code)})
    return status


def active_type(db: Work, type_id: int, field: str = "type_id") -> DealType:
    deal_type = db.get(DealType, int(type_id))
    if deal_type is None or not deal_type.active:
        raise ValidationError(f"{field}: no such deal type", field=field,
                              key="deal.type_unknown", params={"type_id": int(type_id)})
    return deal_type


def process_of(db: Work, type_id: int | None) -> domain.Process:
    if type_id is None:
        return domain.Process()
    deal_type = db.get(DealType, type_id)
    if deal_type is None:
        return domain.Process()
    return domain.Process(simple=deal_type.simple, stages=tuple(
        domain.Stage(s.id, s.code, s.name, s.position, s.status_id, s.status.kind,
                     tuple(s.tasks or ()), tuple(s.rules or ())) for s in deal_type.stages))


def status_ref(status: Status) -> domain.StatusRef:
    return domain.StatusRef(status.id, status.code, status.kind)


def stage_ref(stage: Stage | domain.Stage | None) -> domain.StageRef | None:
    return domain.StageRef(stage.id, stage.code) if stage is not None else None


def loss_reason(db: Work, kind: str, reason_id: object) -> LossReason | None:
    active = db.scalars(select(LossReason.id).where(LossReason.active)).all()
    chosen = domain.require_loss_reason(kind, reason_id, active)
    return db.get(LossReason, chosen) if chosen else None


def reasons(db: Work, include_inactive: bool = False) -> list[dict[str, Any]]:
    stmt = select(LossReason).order_by(LossReason.position, LossReason.id)
    if not include_inactive:
        stmt = stmt.where(LossReason.active)
    return [reason_dict(r) for r in db.scalars(stmt)]


def types(db: Work, include_inactive: bool = False) -> list[dict[str, Any]]:
    stmt = (select(DealType).options(selectinload(DealType.stages))
            .order_by(DealType.position, DealType.id))
    if not include_inactive:
        stmt = stmt.where(DealType.active)
    return [type_dict(t) for t in db.scalars(stmt)]


def next_position(db: Work, column: Any) -> int:
    """Where a new row of a reordered list goes: after the last one."""
    return int(db.scalar(select(func.max(column))) or 0) + 10


def code_count(db: Work, code: str) -> int:
    return int(db.scalar(select(func.count()).where(Status.code == code)) or 0)


def deals_in_status(db: Work, status_id: int) -> int:
    return int(db.scalar(select(func.count()).select_from(
        select(Deal.id).where(Deal.status_id == status_id).limit(1).subquery())) or 0)


def status_removal_counts(db: Work, status: Status) -> tuple[int, int, int]:
    """(other statuses of its kind, deals in it (0/1), stages on it)."""
    same_kind = db.scalar(select(func.count()).where(Status.kind == status.kind,
                                                     Status.id != status.id))
    stages = db.scalar(select(func.count()).where(Stage.status_id == status.id))
    return int(same_kind or 0), deals_in_status(db, status.id), int(stages or 0)


def replace_stages(db: Work, deal_type: DealType, specs: Iterable[Mapping[str, Any]]) -> None:
    """Write a deal type's stages as ``specs`` (matched by ``id``; new ones added)."""
    existing = {s.id: s for s in deal_type.stages}
    dropped = domain.stages_kept(existing, list(specs))
    domain.check_stages_dropped(
        int(db.scalar(select(func.count()).where(Deal.stage_id.in_(dropped))) or 0)
        if dropped else 0)
    # codes are unique per type: park the old ones first (and write that), so stages can
    # swap codes; the specs then give every kept stage its code again
    for stage in existing.values():
        stage.code = f"~{stage.id}"
    db.flush()
    stages = []
    for spec in specs:
        stage = existing.get(spec["id"]) or Stage()
        for key in ("code", "name", "position", "status_id", "tasks", "rules", "documents"):
            setattr(stage, key, spec[key])
        stages.append(stage)
    deal_type.stages = stages
    db.flush()
    db.expire(deal_type)


# ---------------------------------------------------------------- history, tasks, feed

def add_history(db: Work, deal: Deal, field: str, old: Any, new: Any,
                user_id: int | None) -> None:
    db.add(DealHistory(deal_id=deal.id, field=field,
                       old_value=None if old is None else str(old),
                       new_value=None if new is None else str(new), user_id=user_id))


def refresh_next_reminder(db: Work, deal: Deal) -> None:
    db.flush()
    deal.next_reminder_at = db.scalar(
        select(func.min(Reminder.due_at)).where(Reminder.deal_id == deal.id,
                                                Reminder.completed_at.is_(None)))


def add_reminder(db: Work, deal: Deal, spec: domain.TaskSpec, source: str,
                 created_by: int | None, stage_id: int | None = None,
                 dedup_key: str | None = None) -> Reminder | None:
    """A new reminder, or ``None`` when one with ``dedup_key`` exists already."""
    if dedup_key and db.scalar(select(Reminder.id).where(Reminder.dedup_key == dedup_key)):
        return None
    reminder = Reminder(deal_id=deal.id, client_id=deal.client_id,
                        assignee_id=spec.assignee_id, assignee_role=spec.assignee_role,
                        text=spec.text, due_at=spec.due_at, source=source,
                        stage_id=stage_id, dedup_key=dedup_key, created_by=created_by)
    db.add(reminder)
    db.flush()
    refresh_next_reminder(db, deal)
    return reminder


def add_feed(db: Work, deal: Deal, kind: str, text: str, author_id: int | None,
             ref: str | None, data: dict[str, Any] | None = None,
             attachments: list[dict[str, Any]] | None = None) -> FeedEntry | None:
    """A feed line, or ``None`` when the line with this ``ref`` is there already."""
    if ref and db.scalar(select(FeedEntry.id).where(
            FeedEntry.deal_id == deal.id, FeedEntry.kind == kind, FeedEntry.ref == ref)):
        return None
    entry = FeedEntry(deal_id=deal.id, kind=kind, text=text, author_id=author_id, ref=ref,
                      data=data or {}, attachments=attachments or [])
    db.add(entry)
    db.flush()
    return entry


def feed_line(db: Work, deal: Deal, kind: str, ref: str) -> FeedEntry:
    return db.scalars(select(FeedEntry).where(
        FeedEntry.deal_id == deal.id, FeedEntry.kind == kind, FeedEntry.ref == ref)).one()


def feed_once(db: Work, deal: Deal, kind: str, ref: str, cleaned: Mapping[str, Any],
              author_id: int | None = None) -> FeedEntry:
    """The line with this ``ref`` (a message id, a lead): added from ``cleaned`` (``text``,
    ``data``, ``attachments``) the first time, the same line after."""
    return (add_feed(db, deal, kind, cleaned["text"], author_id, ref, data=cleaned["data"],
                     attachments=cleaned["attachments"])
            or feed_line(db, deal, kind, ref))


def listed_row(db: Work, model: Any, row_id: int | None, entity: str) -> Any:
    """A row of a reference list (loss reason, deal type) to save: a new active one at the
    end of the list when there is no id, else the one with that id."""
    if row_id is None:
        row = model(position=next_position(db, model.position), active=True)
        db.add(row)
        return row
    found = db.get(model, row_id)
    if found is None:
        raise NotFound(f"{entity} {row_id} not found", entity=entity, id=row_id)
    return found


def email_line(db: Work, deal_id: int, message_id: str) -> FeedEntry | None:
    return db.scalars(select(FeedEntry).where(
        FeedEntry.deal_id == int(deal_id), FeedEntry.kind == "email",
        FeedEntry.ref == domain.email_ref(str(message_id))).with_for_update()).first()


def attachment(db: Work, deal: Deal, key: str) -> dict[str, Any]:
    for attachments in db.scalars(select(FeedEntry.attachments).where(
            FeedEntry.deal_id == deal.id, FeedEntry.kind.in_(("comment", "email", "lead")),
            FeedEntry.attachments.contains([{"key": str(key)}]))):
        for item in attachments:
            if item.get("key") == key:
                return dict(item)
    raise NotFound(f"file {key} not found on deal {deal.id}", entity="file", id=key)


def _locked(db: Work, model: type[Any], value: object, entity: str) -> Any:
    """The row of ``model`` with the id ``value`` (as ``<entity>_id``), locked."""
    key = domain.identifier(value, f"{entity}_id")
    row = db.scalars(select(model).where(model.id == key).with_for_update()).first()
    if row is None:
        raise NotFound(f"{entity} {value} not found", entity=entity, id=value)
    return row


def locked_reminder(db: Work, reminder_id: object) -> Reminder:
    return _locked(db, Reminder, reminder_id, "reminder")


def open_stage_tasks(db: Work, deal: Deal) -> int:
    return int(db.scalar(select(func.count()).where(
        Reminder.deal_id == deal.id, Reminder.stage_id == deal.stage_id,
        Reminder.completed_at.is_(None))) or 0)


def reminders(db: Work, client_id: int | None, deal_id: int | None, user_id: int | None,
              open_only: bool, roles: list[str] | None, limit: int) -> list[dict[str, Any]]:
    stmt = (select(Reminder, Deal.name).join(Deal, Deal.id == Reminder.deal_id)
            .order_by(Reminder.due_at, Reminder.id).limit(min(int(limit), 1000)))
    if client_id is not None:
        stmt = stmt.where(Reminder.client_id == int(client_id))
    if deal_id is not None:
        stmt = stmt.where(Reminder.deal_id == int(deal_id))
    if user_id is not None:
        mine = Reminder.assignee_id == int(user_id)
        stmt = stmt.where(or_(mine, Reminder.assignee_role.in_(list(roles))) if roles
                          else mine)
    if open_only:
        stmt = stmt.where(Reminder.completed_at.is_(None))
    return [reminder_dict(r, name) for r, name in db.execute(stmt).all()]


def claim_due_reminders(db: Work) -> list[tuple[Reminder, str]]:
    """Reminders come due and not yet announced, claimed with SKIP LOCKED so replicas
    share the work and never repeat it."""
    return [(r, name) for r, name in db.execute(
        select(Reminder, Deal.name).join(Deal, Deal.id == Reminder.deal_id)
        .where(Reminder.completed_at.is_(None), Reminder.due_emitted_at.is_(None),
               Reminder.due_at <= now())
        .order_by(Reminder.due_at).limit(DUE_BATCH)
        .with_for_update(of=Reminder, skip_locked=True)).all()]


def move_client_rows(db: Work, merged: int, survivor: int) -> None:
    """Reminders and parties of a merged client follow it to the survivor."""
    db.execute(update(Reminder).where(Reminder.client_id == merged).values(client_id=survivor))
    db.execute(update(Party).where(Party.client_id == merged).values(client_id=survivor))


def set_reminders_client(db: Work, deal: Deal) -> None:
    db.execute(update(Reminder).where(Reminder.deal_id == deal.id)
               .values(client_id=deal.client_id))


# ------------------------------------------------------------------------------ pages

def history_of(db: Work, deal_id: int, limit: int) -> list[dict[str, Any]]:
    rows = db.scalars(select(DealHistory).where(DealHistory.deal_id == deal_id)
                      .order_by(DealHistory.id.desc()).limit(limit))
    return [{"field": h.field, "old_value": h.old_value, "new_value": h.new_value,
             "user_id": h.user_id, "changed_at": h.changed_at} for h in rows]


def page_parts(db: Work, deal: Deal) -> dict[str, Any]:
    """What the deal page shows besides the deal itself (``deal_page``)."""
    process_type = db.get(DealType, deal.type_id) if deal.type_id else None
    return {
        "type": type_dict(process_type) if process_type else None,
        "documents": ((process_type.documents if process_type else [])
                      + (deal.stage.documents if deal.stage else [])),
        "feed": [feed_dict(e) for e in db.scalars(
            select(FeedEntry).where(FeedEntry.deal_id == deal.id)
            .order_by(FeedEntry.created_at.desc(), FeedEntry.id.desc()).limit(300))],
        "reminders": [reminder_dict(r, deal.name) for r in db.scalars(
            select(Reminder).where(Reminder.deal_id == deal.id)
            .order_by(Reminder.completed_at.is_not(None), Reminder.due_at).limit(200))],
        "orders": orders(db, deal.id),
        "calculation": calculation_dict(db.get(Calculation, deal.id)),
        "parties": [party_dict(p) for p in db.scalars(
            select(Party).where(Party.deal_id == deal.id).order_by(Party.id))],
    }


def orders(db: Work, deal_id: int) -> list[dict[str, Any]]:
    return [order_dict(o) for o in db.scalars(
        select(Order).where(Order.deal_id == deal_id).order_by(Order.id.desc()))]


def locked_order(db: Work, order_id: object) -> Order:
    return _locked(db, Order, order_id, "order")


def locked_calculation(db: Work, deal_id: int) -> Calculation | None:
    return db.scalars(select(Calculation).where(Calculation.deal_id == deal_id)
                      .with_for_update()).first()


def deals(db: Work, manager_id: int | None, status_id: int | None, client_id: int | None,
          limit: int) -> list[Deal]:
    stmt = (select(Deal).options(selectinload(Deal.contacts))
            .order_by(Deal.id.desc()).limit(min(int(limit), 500)))
    if manager_id is not None:
        stmt = stmt.where(Deal.manager_id == int(manager_id))
    if client_id is not None:
        stmt = stmt.where(Deal.client_id == int(client_id))
    if status_id is not None:
        stmt = stmt.where(Deal.status_id == status_id)
    return list(db.scalars(stmt).unique())


def open_deal_ids_for_contact(db: Work, contact_id: int) -> list[int]:
    return list(db.scalars(select(Deal.id).join(DealContact).join(Status)
                           .where(DealContact.contact_id == int(contact_id),
                                  Status.kind == "open")))


def open_deals_to_call_back(db: Work, deal_ids: set[int], contact_id: int) -> list[Deal]:
    """Open deals named by a call or having its contact, locked."""
    ids = set(deal_ids) | set(db.scalars(select(DealContact.deal_id)
                                         .where(DealContact.contact_id == contact_id)))
    return list(db.scalars(select(Deal).join(Status).where(Deal.id.in_(ids),
                                                           Status.kind == "open")
                           .with_for_update(of=Deal)).all())


def client_deals(db: Work, client_id: int) -> list[Deal]:
    return list(db.scalars(select(Deal).where(Deal.client_id == client_id)
                           .with_for_update(of=Deal)).all())


def open_deals_without_contacts(db: Work, client_id: int) -> list[Deal]:
    return list(db.scalars(select(Deal).join(Status).where(
        Deal.client_id == client_id, Status.kind == "open", ~Deal.contacts.any())
        .with_for_update(of=Deal)).all())


def deals_with_history(db: Work, after_id: int, limit: int) -> dict[str, Any]:
    """A keyset page (by id) of deals with the history of the fields a projection needs
    to replay them from creation (the analytics rebuild)."""
    rows = db.execute(
        select(*CARD_COLUMNS, Deal.loss_reason_id, Deal.source,
               Deal.source_detail, Status.code.label("status_code"),
               Stage.code.label("stage_code"))
        .join(Status, Status.id == Deal.status_id)
        .outerjoin(Stage, Stage.id == Deal.stage_id)
        .where(Deal.id > after_id).order_by(Deal.id).limit(limit)).all()
    ids = [d.id for d in rows]
    history: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        for h in db.execute(
                select(DealHistory.deal_id, DealHistory.field, DealHistory.old_value,
                       DealHistory.new_value, DealHistory.changed_at)
                # the page is every deal with an id in (after, last]: a range, not a
                # list of 5,000 ids to plan and probe
                .where(DealHistory.deal_id > after_id, DealHistory.deal_id <= ids[-1],
                       DealHistory.field.in_(domain.REPLAYED_FIELDS))
                .order_by(DealHistory.id)):
            history[h.deal_id].append({"field": h.field, "old_value": h.old_value,
                                       "new_value": h.new_value,
                                       "changed_at": h.changed_at})
    names = {r.id: r.name for r in db.scalars(select(LossReason))}
    items = [{"id": d.id, "name": d.name, "client_id": d.client_id,
              "client_name": d.client_name, "manager_id": d.manager_id,
              "type_id": d.type_id, "status": d.status_code, "stage": d.stage_code,
              "amount": d.amount, "currency": d.currency, "created_at": d.created_at,
              "closed_at": d.closed_at, "version": d.version,
              "loss_reason_id": d.loss_reason_id,
              "loss_reason": names.get(d.loss_reason_id) if d.loss_reason_id else None,
              "planned_close_on": d.planned_close_on, "source": d.source,
              "source_detail": d.source_detail,
              "history": history[d.id]} for d in rows]
    return {"items": items, "next_after": ids[-1] if len(ids) == limit else None}


def next_order_number(db: Work) -> int:
    return int(db.scalar(select(models.order_numbers.next_value())))
