"""Deals service: deals, their processes, contacts, feed, reminders, orders, calculator and
environment (MISSION D1–D12).  Entry points only: parse, call the domain, persist, emit."""
from __future__ import annotations

import base64
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from nameko.dependency_providers import Config
from nameko.timer import Timer
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import selectinload

from services.deals import board, catalogue, catalogue_store, domain, models
from services.deals.models import (
    Calculation,
    CalculationLine,
    Deal,
    DealContact,
    DealHistory,
    DealType,
    FeedEntry,
    LossReason,
    Order,
    OrderLine,
    Party,
    Reminder,
    Stage,
    Status,
)
from services.deals.serialize import (
    CARD_COLUMNS,
    calculation_dict,
    contact_dict,
    deal_dict,
    feed_dict,
    order_dict,
    party_dict,
    reason_dict,
    reminder_dict,
    status_dict,
    type_dict,
)
from services.kit.dependencies import CallLog, Permissions, Remote, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import Conflict, NotFound, ValidationError
from services.kit.parse import version as parse_version
from services.kit.service import HealthCheck

CALL_BACK_TEXT = "Перезвонить: {number} (пропущенный звонок)"
DUE_BATCH = 200


def _now() -> datetime:
    return datetime.now(UTC)


class ConfiguredTimer(Timer):
    """nameko's timer with its interval from the service config (``REMINDER_TICK_SECONDS``),
    so tests tick fast and production does not log a line every second."""

    def setup(self) -> None:
        self.interval = float(self.container.config.get("REMINDER_TICK_SECONDS", self.interval))


timer = ConfiguredTimer.decorator


class DealsService(HealthCheck):
    name = "deals"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    config = Config()
    clients = Remote("clients")
    payments = Remote("payments")
    may = Permissions()

    # -------------------------------------------------------------------- helpers
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(str(self.config.get("TIMEZONE", "Europe/Moscow")))

    def _deal(self, deal_id: int, lock: bool = False, also: tuple[int | None, ...] = ()
              ) -> Deal:
        """The deal; ``lock`` for a change, which the acting user must be allowed to make
        (the permission matrix: a manager changes only the deals they manage)."""
        deal_id = domain.identifier(deal_id, "deal_id")  # type: ignore[assignment]
        stmt = select(Deal).where(Deal.id == deal_id)
        deal = self.db.scalars(stmt.with_for_update(of=Deal) if lock else stmt).first()
        if deal is None:
            raise NotFound(f"deal {deal_id} not found", entity="deal", id=deal_id)
        if lock:
            self.may.check("deals", [deal.manager_id, *also], f"deal {deal.id}")
        return deal

    def _locked_current(self, deal_id: int, version: int | None) -> Deal:
        deal = self._deal(deal_id, lock=True)
        if not domain.check_version(deal.version, version):
            raise Conflict(f"deal {deal_id} was changed by someone else; reload it",
                           entity="deal", id=deal_id, version=deal.version)
        return deal

    def _statuses(self) -> list[Status]:
        return list(self.db.scalars(select(Status).order_by(Status.position, Status.id)))

    def _status(self, code: str) -> Status:
        status = self.db.scalars(select(Status).where(Status.code == str(code))).first()
        if status is None:
            raise ValidationError(f"status: unknown status '{code}'", field="status")
        return status

    def _type(self, type_id: int, field: str = "type_id") -> DealType:
        deal_type = self.db.get(DealType, int(type_id))
        if deal_type is None or not deal_type.active:
            raise ValidationError(f"{field}: no such deal type", field=field)
        return deal_type

    def _process(self, type_id: int | None) -> domain.Process:
        if type_id is None:
            return domain.Process()
        deal_type = self.db.get(DealType, type_id)
        if deal_type is None:
            return domain.Process()
        return domain.Process(simple=deal_type.simple, stages=tuple(
            domain.Stage(s.id, s.code, s.name, s.position, s.status_id, s.status.kind,
                         tuple(s.tasks or ()), tuple(s.rules or ())) for s in deal_type.stages))

    def _history(self, deal: Deal, field: str, old: Any, new: Any, user_id: int | None) -> None:
        self.db.add(DealHistory(deal_id=deal.id, field=field,
                                old_value=None if old is None else str(old),
                                new_value=None if new is None else str(new), user_id=user_id))

    def _client(self, client_id: int) -> dict[str, Any]:
        try:
            return self.clients.get_client(client_id)  # type: ignore[no-any-return]
        except NotFound:
            raise ValidationError(f"client_id: client {client_id} not found",
                                  field="client_id") from None

    def _refresh_next_reminder(self, deal: Deal) -> None:
        self.db.flush()
        deal.next_reminder_at = self.db.scalar(
            select(func.min(Reminder.due_at)).where(Reminder.deal_id == deal.id,
                                                    Reminder.completed_at.is_(None)))

    def _add_reminder(self, deal: Deal, spec: domain.TaskSpec, source: str,
                      created_by: int | None, stage_id: int | None = None,
                      dedup_key: str | None = None) -> Reminder | None:
        if dedup_key and self.db.scalar(select(Reminder.id)
                                        .where(Reminder.dedup_key == dedup_key)):
            return None
        reminder = Reminder(deal_id=deal.id, client_id=deal.client_id,
                            assignee_id=spec.assignee_id, assignee_role=spec.assignee_role,
                            text=spec.text, due_at=spec.due_at, source=source,
                            stage_id=stage_id, dedup_key=dedup_key, created_by=created_by)
        self.db.add(reminder)
        self.db.flush()
        self._refresh_next_reminder(deal)
        self.db.emit("reminder_created", {
            "reminder_id": reminder.id, "deal_id": deal.id, "client_id": deal.client_id,
            "assignee_id": reminder.assignee_id, "assignee_role": reminder.assignee_role,
            "due_at": reminder.due_at, "text": reminder.text, "source": source,
            "user_id": created_by})
        return reminder

    def _enter_stage(self, deal: Deal, stage: domain.Stage | None, user_id: int | None) -> None:
        deal.stage = self.db.get(Stage, stage.id) if stage else None
        if stage is not None:
            for spec in domain.stage_tasks(stage, _now(), deal.manager_id):
                self._add_reminder(deal, spec, "stage", user_id, stage_id=stage.id)

    def _move(self, deal: Deal, status: Status, stage: domain.Stage | None,
              user_id: int | None, loss_reason: LossReason | None = None,
              loss_comment: str | None = None, by_rule: str | None = None) -> None:
        """Put the deal into ``status``/``stage``: history, tasks, events (D4, D5)."""
        old_status, old_stage = deal.status, deal.stage
        if old_status.id == status.id and (stage.id if stage else None) == deal.stage_id:
            return  # nothing moves, nothing is recorded
        deal.status = status
        if old_status.id != status.id:
            self._history(deal, "status", old_status.code, status.code, user_id)
        if (stage.id if stage else None) != (old_stage.id if old_stage else None):
            self._history(deal, "stage", old_stage.code if old_stage else None,
                          stage.code if stage else None, user_id)
            self._enter_stage(deal, stage, user_id)
        if status.kind == "open":
            deal.closed_at = None
        elif old_status.kind == "open" or old_status.kind != status.kind:
            deal.closed_at = _now()
        if status.kind == "lost":
            deal.loss_reason_id = loss_reason.id if loss_reason else None
            deal.loss_comment = loss_comment
            self._history(deal, "loss_reason", None, loss_reason.name if loss_reason else None,
                          user_id)
        elif deal.loss_reason_id is not None:
            deal.loss_reason_id = deal.loss_comment = None
        deal.version += 1
        deal.updated_by = user_id
        payload = {"deal_id": deal.id, "name": deal.name, "client_id": deal.client_id,
                   "client_name": deal.client_name,
                   "manager_id": deal.manager_id, "type_id": deal.type_id,
                   "from_status": old_status.code, "to_status": status.code,
                   "to_status_kind": status.kind,
                   "from_stage": old_stage.code if old_stage else None,
                   "to_stage": stage.code if stage else None, "amount": deal.amount,
                   "currency": deal.currency, "user_id": user_id, "by_rule": by_rule,
                   # analytics orders a deal's events by version and keeps the reason
                   # with the transition, so a late or replayed event changes nothing
                   "version": deal.version, "changed_at": _now(),
                   "created_at": deal.created_at,
                   "loss_reason_id": loss_reason.id if loss_reason else None,
                   "loss_reason": loss_reason.name if loss_reason else None}
        self.db.emit("deal_status_changed", payload)
        if status.kind == "won" and old_status.kind != "won":
            self.db.emit("deal_won", {**payload, "status": status.code})
        if status.kind == "lost" and old_status.kind != "lost":
            self.db.emit("deal_lost", {**payload, "status": status.code,
                                       "reason_id": loss_reason.id if loss_reason else None,
                                       "reason": loss_reason.name if loss_reason else None,
                                       "comment": loss_comment})

    def _loss_reason(self, kind: str, reason_id: object) -> LossReason | None:
        active = self.db.scalars(select(LossReason.id).where(LossReason.active)).all()
        chosen = domain.require_loss_reason(kind, reason_id, active)
        return self.db.get(LossReason, chosen) if chosen else None

    def _apply_rule(self, deal: Deal, trigger: str) -> None:
        """A stage's rule moves the deal on by itself (D5), e.g. fully paid -> won."""
        process = self._process(deal.type_id)
        target = domain.rule_target(process, process.stage(deal.stage_id), trigger)
        if target is not None and target.id != deal.stage_id:
            self._move(deal, self.db.get(Status, target.status_id), target, None,
                       by_rule=trigger)

    def _feed(self, deal: Deal, kind: str, text: str, author_id: int | None, ref: str | None,
              data: dict[str, Any] | None = None,
              attachments: list[dict[str, Any]] | None = None) -> FeedEntry | None:
        if ref and self.db.scalar(select(FeedEntry.id).where(
                FeedEntry.deal_id == deal.id, FeedEntry.kind == kind, FeedEntry.ref == ref)):
            return None
        entry = FeedEntry(deal_id=deal.id, kind=kind, text=text, author_id=author_id, ref=ref,
                          data=data or {}, attachments=attachments or [])
        self.db.add(entry)
        self.db.flush()
        return entry

    # ------------------------------------------------------------- reference lists
    def _reasons(self, include_inactive: bool = False) -> list[dict[str, Any]]:
        stmt = select(LossReason).order_by(LossReason.position, LossReason.id)
        if not include_inactive:
            stmt = stmt.where(LossReason.active)
        return [reason_dict(r) for r in self.db.scalars(stmt)]

    def _types(self, include_inactive: bool = False) -> list[dict[str, Any]]:
        stmt = (select(DealType).options(selectinload(DealType.stages))
                .order_by(DealType.position, DealType.id))
        if not include_inactive:
            stmt = stmt.where(DealType.active)
        return [type_dict(t) for t in self.db.scalars(stmt)]

    @rpc
    def list_statuses(self) -> list[dict[str, Any]]:
        return [status_dict(s) for s in self._statuses()]

    @rpc
    def save_status(self, data: dict[str, Any], user_id: int | None = None) -> dict[str, Any]:
        """Create (no ``id``) or rename/recolour a status; deals refer to its id, so a
        rename never loses one.  Changing ``kind`` of a status in use is refused."""
        cleaned = domain.validate_status(data)
        status_id = domain.identifier(data.get("id"), "id", required=False)
        if status_id is None:
            position = (self.db.scalar(select(func.max(Status.position))) or 0) + 10
            code = cleaned.pop("code", None) or ""
            if code and self.db.scalar(select(func.count()).where(Status.code == code)):
                raise ValidationError(f"code: '{code}' is taken", field="code",
                                      key="status.code_taken", params={"code": code})
            # a unique placeholder until the id names it: two statuses created at once
            # must not both hold "" under the unique constraint
            status = Status(position=position, code=code or f"new-{uuid.uuid4().hex}")
            self.db.add(status)
        else:
            status = self.db.get(Status, status_id)
            if status is None:
                raise NotFound(f"status {status_id} not found", entity="status", id=status_id)
            cleaned.pop("code", None)  # the code is what API clients name; it stays
            if cleaned["kind"] != status.kind and self._deals_in_status(status.id):
                raise ValidationError("kind: deals are in this status; the kind cannot change",
                                      field="kind")
        for key, value in cleaned.items():
            setattr(status, key, value)
        status.updated_by = user_id
        self.db.flush()
        if status.code.startswith("new-"):
            status.code = f"status_{status.id}"
        if self.db.scalar(select(func.count()).where(Status.code == status.code)) > 1:
            raise ValidationError(f"code: '{status.code}' is taken", field="code",
                                  key="status.code_taken", params={"code": status.code})
        return status_dict(status)

    def _deals_in_status(self, status_id: int) -> int:
        return int(self.db.scalar(select(func.count()).select_from(
            select(Deal.id).where(Deal.status_id == status_id).limit(1).subquery())) or 0)

    @rpc
    def reorder_statuses(self, status_ids: list[int], user_id: int | None = None
                         ) -> list[dict[str, Any]]:
        statuses = {s.id: s for s in self._statuses()}
        for position, status_id in enumerate(domain.check_order(status_ids, statuses), 1):
            statuses[status_id].position = position * 10
            statuses[status_id].updated_by = user_id
        return [status_dict(s) for s in self._statuses()]

    @rpc
    def delete_status(self, status_id: int, user_id: int | None = None) -> None:
        status = self.db.get(Status, domain.identifier(status_id, "status_id"))
        if status is None:
            raise NotFound(f"status {status_id} not found", entity="status", id=status_id)
        same_kind = self.db.scalar(select(func.count()).where(Status.kind == status.kind,
                                                              Status.id != status.id))
        stages = self.db.scalar(select(func.count()).where(Stage.status_id == status.id))
        domain.check_status_removal(status.kind, int(same_kind or 0),
                                    self._deals_in_status(status.id), int(stages or 0))
        self.db.delete(status)

    @rpc
    def list_loss_reasons(self, include_inactive: bool = False) -> list[dict[str, Any]]:
        return self._reasons(include_inactive)

    @rpc
    def save_loss_reason(self, data: dict[str, Any], user_id: int | None = None
                         ) -> dict[str, Any]:
        """Create, rename or retire (``active`` false) a loss reason."""
        if not isinstance(data, dict):
            raise ValidationError("loss_reason: expected an object", field="loss_reason")
        reason_id = domain.identifier(data.get("id"), "id", required=False)
        if reason_id is None:
            position = (self.db.scalar(select(func.max(LossReason.position))) or 0) + 10
            reason = LossReason(position=position, active=True)
            self.db.add(reason)
        else:
            found = self.db.get(LossReason, reason_id)
            if found is None:
                raise NotFound(f"loss reason {reason_id} not found", entity="loss_reason",
                               id=reason_id)
            reason = found
        reason.name = domain.text(data.get("name"), "name", limit=200)
        if "active" in data:
            reason.active = bool(data["active"])
        reason.updated_by = user_id
        self.db.flush()
        return reason_dict(reason)

    @rpc
    def list_deal_types(self, include_inactive: bool = False) -> list[dict[str, Any]]:
        return self._types(include_inactive)

    @rpc
    def save_deal_type(self, data: dict[str, Any], user_id: int | None = None
                       ) -> dict[str, Any]:
        """Create or replace a deal type with its process.  Stages are matched by ``id``;
        a stage that deals are in cannot be dropped."""
        kinds = {s.id: s.kind for s in self._statuses()}
        cleaned = domain.validate_deal_type(data, kinds)
        type_id = domain.identifier(data.get("id"), "id", required=False)
        if type_id is None:
            position = (self.db.scalar(select(func.max(DealType.position))) or 0) + 10
            deal_type = DealType(position=position, active=True)
            self.db.add(deal_type)
        else:
            found = self.db.get(DealType, type_id)
            if found is None:
                raise NotFound(f"deal type {type_id} not found", entity="deal_type", id=type_id)
            deal_type = found
        if "active" in data:
            deal_type.active = bool(data["active"])
        for key in ("name", "simple", "description", "documents"):
            setattr(deal_type, key, cleaned[key])
        deal_type.updated_by = user_id
        existing = {s.id: s for s in deal_type.stages}
        kept_ids = {s["id"] for s in cleaned["stages"] if s["id"]}
        unknown = kept_ids - set(existing)
        if unknown:
            raise ValidationError(f"stages: stage {min(unknown)} is not of this type",
                                  field="stages")
        dropped = set(existing) - kept_ids
        if dropped and self.db.scalar(select(func.count()).where(Deal.stage_id.in_(dropped))):
            raise ValidationError("stages: deals are in a stage you removed; move them first",
                                  field="stages")
        stages = []
        for spec in cleaned["stages"]:
            stage = existing.get(spec["id"]) or Stage()
            for key in ("code", "name", "position", "status_id", "tasks", "rules",
                        "documents"):
                setattr(stage, key, spec[key])
            stages.append(stage)
        # codes are unique per type: clear the old ones first so stages can swap codes
        for stage in existing.values():
            stage.code = f"~{stage.id}"
        self.db.flush()
        deal_type.stages = stages
        self.db.flush()
        self.db.expire(deal_type)
        return type_dict(self.db.get(DealType, deal_type.id))

    # ------------------------------------------------------------------------ deals
    @rpc
    def create_deal(self, data: dict[str, Any], user_id: int | None = None) -> dict[str, Any]:
        cleaned = domain.validate_new_deal(data)
        process = domain.Process()
        if cleaned["type_id"] is not None:
            process = self._process(self._type(cleaned["type_id"]).id)
        if cleaned["status"]:
            status = self._status(cleaned["status"])
        elif process.stages:
            status = self.db.get(Status, process.stages[0].status_id)
        else:
            status = next(s for s in self._statuses() if s.kind == "open")
        stage = domain.stage_for_status(process, None, status.id, status.name)
        self.may.check("deals", [cleaned["manager_id"] or self.may.user_id or user_id],
                       "a new deal")
        client = self._client(cleaned["client_id"])
        expected = cleaned["expected_amount"] or Decimal("0.00")
        deal = Deal(name=cleaned["name"], client_id=client["id"], client_name=client["name"],
                    status=status, type_id=cleaned["type_id"],
                    manager_id=cleaned["manager_id"] or user_id, created_by=user_id,
                    updated_by=user_id, expected_amount=expected, amount=expected,
                    closed_at=None if status.kind == "open" else _now())
        deal.contacts = [DealContact(**c, added_by=user_id)
                         for c in domain.copied_contacts(client.get("contacts") or [])]
        self.db.add(deal)
        self.db.flush()
        self._history(deal, "created", None, deal.name, user_id)
        self.db.emit("deal_created", {
            "deal_id": deal.id, "name": deal.name, "client_id": deal.client_id,
            "client_name": deal.client_name, "manager_id": deal.manager_id,
            "status": status.code, "stage": stage.code if stage else None,
            "type_id": deal.type_id, "amount": deal.amount, "currency": deal.currency,
            "user_id": user_id, "version": deal.version, "created_at": deal.created_at})
        self._enter_stage(deal, stage, user_id)
        return deal_dict(deal)

    @rpc
    def get_deal(self, deal_id: int) -> dict[str, Any]:
        return deal_dict(self._deal(deal_id))

    @rpc
    def deal_page(self, deal_id: int) -> dict[str, Any]:
        """Everything the deal page shows from this service, in one answer."""
        deal = self._deal(deal_id)
        result = deal_dict(deal)
        process_type = self.db.get(DealType, deal.type_id) if deal.type_id else None
        result["type"] = type_dict(process_type) if process_type else None
        result["documents"] = ((process_type.documents if process_type else [])
                               + (deal.stage.documents if deal.stage else []))
        result["feed"] = [feed_dict(e) for e in self.db.scalars(
            select(FeedEntry).where(FeedEntry.deal_id == deal.id)
            .order_by(FeedEntry.created_at.desc(), FeedEntry.id.desc()).limit(300))]
        result["reminders"] = [reminder_dict(r, deal.name) for r in self.db.scalars(
            select(Reminder).where(Reminder.deal_id == deal.id)
            .order_by(Reminder.completed_at.is_not(None), Reminder.due_at).limit(200))]
        result["orders"] = [order_dict(o) for o in self.db.scalars(
            select(Order).where(Order.deal_id == deal.id).order_by(Order.id.desc()))]
        result["calculation"] = calculation_dict(self.db.get(Calculation, deal.id))
        result["parties"] = [party_dict(p) for p in self.db.scalars(
            select(Party).where(Party.deal_id == deal.id).order_by(Party.id))]
        result["history"] = self._history_of(deal.id, 300)
        result["statuses"] = [status_dict(s) for s in self._statuses()]
        result["types"] = self._types()
        result["loss_reasons"] = self._reasons()
        result["loss_reason"] = (reason_dict(self.db.get(LossReason, deal.loss_reason_id))
                                 if deal.loss_reason_id else None)
        return result

    def _history_of(self, deal_id: int, limit: int) -> list[dict[str, Any]]:
        rows = self.db.scalars(select(DealHistory).where(DealHistory.deal_id == deal_id)
                               .order_by(DealHistory.id.desc()).limit(limit))
        return [{"field": h.field, "old_value": h.old_value, "new_value": h.new_value,
                 "user_id": h.user_id, "changed_at": h.changed_at} for h in rows]

    @rpc
    def deal_history(self, deal_id: int, limit: int = 500) -> list[dict[str, Any]]:
        return self._history_of(self._deal(deal_id).id, min(int(limit), 5000))

    @rpc
    def list_deals(self, manager_id: int | None = None, status: str | None = None,
                   client_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = (select(Deal).options(selectinload(Deal.contacts))
                .order_by(Deal.id.desc()).limit(min(int(limit), 500)))
        if manager_id is not None:
            stmt = stmt.where(Deal.manager_id == int(manager_id))
        if client_id is not None:
            stmt = stmt.where(Deal.client_id == int(client_id))
        if status:
            stmt = stmt.where(Deal.status_id == self._status(status).id)
        return [deal_dict(d) for d in self.db.scalars(stmt).unique()]

    @rpc
    def deals_with_history(self, after: int | None = None, limit: int = 500
                           ) -> dict[str, Any]:
        """A keyset page (by id) of deals with the history of the fields a projection
        needs to replay them from creation (the analytics rebuild)."""
        after_id = domain.identifier(after, "after", required=False) or 0
        limit = max(1, min(int(limit), 5000))
        deals = self.db.execute(
            select(*CARD_COLUMNS, Deal.loss_reason_id, Status.code.label("status_code"),
                   Stage.code.label("stage_code"))
            .join(Status, Status.id == Deal.status_id)
            .outerjoin(Stage, Stage.id == Deal.stage_id)
            .where(Deal.id > after_id).order_by(Deal.id).limit(limit)).all()
        ids = [d.id for d in deals]
        history: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        if ids:
            for h in self.db.execute(
                    select(DealHistory.deal_id, DealHistory.field, DealHistory.old_value,
                           DealHistory.new_value, DealHistory.changed_at)
                    .where(DealHistory.deal_id.in_(ids),
                           DealHistory.field.in_(domain.REPLAYED_FIELDS))
                    .order_by(DealHistory.id)):
                history[h.deal_id].append({"field": h.field, "old_value": h.old_value,
                                           "new_value": h.new_value,
                                           "changed_at": h.changed_at})
        reasons = {r.id: r.name for r in self.db.scalars(select(LossReason))}
        items = [{"id": d.id, "name": d.name, "client_id": d.client_id,
                  "client_name": d.client_name, "manager_id": d.manager_id,
                  "type_id": d.type_id, "status": d.status_code, "stage": d.stage_code,
                  "amount": d.amount, "currency": d.currency, "created_at": d.created_at,
                  "closed_at": d.closed_at, "version": d.version,
                  "loss_reason_id": d.loss_reason_id,
                  "loss_reason": reasons.get(d.loss_reason_id) if d.loss_reason_id else None,
                  "history": history[d.id]} for d in deals]
        return {"items": items, "next_after": ids[-1] if len(ids) == limit else None}

    @rpc
    def board(self, filters: dict[str, Any] | None = None, per_column: int = 20
              ) -> dict[str, Any]:
        """The kanban's first screen: every column's count, sum and first page."""
        return board.board(self.db.session, domain.parse_filter(filters), self._statuses(),
                           self.tz, per_column)

    @rpc
    def board_column(self, status: str, filters: dict[str, Any] | None = None,
                     after: int | None = None, limit: int = 20) -> dict[str, Any]:
        return board.column_page(self.db.session, domain.parse_filter(filters),
                                 self._statuses(), self.tz, self._status(status),
                                 domain.identifier(after, "after", required=False), limit)

    @rpc
    def search_deals(self, filters: dict[str, Any] | None = None, after: int | None = None,
                     limit: int = 50) -> dict[str, Any]:
        """The table mode: a keyset page of deals matching ``filters``, newest first."""
        return board.table_page(self.db.session, domain.parse_filter(filters),
                                self._statuses(), self.tz,
                                domain.identifier(after, "after", required=False), limit)

    @rpc
    def update_deal(self, deal_id: int, changes: dict[str, Any], user_id: int | None = None,
                    version: int | None = None) -> dict[str, Any]:
        """Edit name, client, manager, type, expected amount; every changed field goes to
        the history and one ``deal_updated`` event."""
        cleaned = domain.validate_deal_changes(changes)
        deal = self._locked_current(deal_id, version)
        if self._apply_changes(deal, cleaned, user_id):
            self.db.flush()
            self.db.expire(deal)
        return deal_dict(self._deal(deal.id))

    def _apply_changes(self, deal: Deal, cleaned: dict[str, Any], user_id: int | None) -> bool:
        before = {"name": deal.name, "client_id": deal.client_id,
                  "manager_id": deal.manager_id, "type_id": deal.type_id,
                  "expected_amount": deal.expected_amount}
        diff = domain.changes_between(before, cleaned)
        if not diff:
            return False
        if "client_id" in diff:
            client = self._client(cleaned["client_id"])
            diff["client_name"] = {"from": deal.client_name, "to": client["name"]}
            deal.client_id, deal.client_name = client["id"], client["name"]
            self.db.execute(update(Reminder).where(Reminder.deal_id == deal.id)
                            .values(client_id=deal.client_id))
        if "type_id" in diff:
            new_type = cleaned["type_id"]
            process = self._process(self._type(new_type).id if new_type else None)
            stage = domain.stage_for_status(process, None, deal.status_id, deal.status.name,
                                            field="type_id")
            old_stage = deal.stage
            deal.type_id = new_type
            if (stage.id if stage else None) != (old_stage.id if old_stage else None):
                diff["stage"] = {"from": old_stage.code if old_stage else None,
                                 "to": stage.code if stage else None}
                self._enter_stage(deal, stage, user_id)
        for key in ("name", "manager_id", "expected_amount"):
            if key in diff:
                setattr(deal, key, cleaned[key])
        if "expected_amount" in diff:
            amount = domain.effective_amount(deal.expected_amount, deal.budget,
                                             deal.budget_revision > 0)
            if amount != deal.amount:
                diff["amount"] = {"from": deal.amount, "to": amount}
                deal.amount = amount
        for key, change in diff.items():
            self._history(deal, key, change["from"], change["to"], user_id)
        deal.version += 1
        deal.updated_by = user_id
        self.db.emit("deal_updated", {
            "deal_id": deal.id, "name": deal.name, "client_id": deal.client_id,
            "manager_id": deal.manager_id, "previous_manager_id": before["manager_id"],
            "changes": diff, "user_id": user_id, "version": deal.version})
        return True

    @rpc
    def change_status(self, deal_id: int, status: str, user_id: int | None = None,
                      version: int | None = None, loss_reason_id: int | None = None,
                      loss_comment: str | None = None) -> dict[str, Any]:
        """Move a deal to a common status (a kanban drop); its process picks the stage and
        may refuse the move (``MoveRefused`` as a ValidationError naming ``status``)."""
        deal = self._locked_current(deal_id, version)
        new = self._status(status)
        process = self._process(deal.type_id)
        current = process.stage(deal.stage_id)
        target = domain.stage_for_status(process, current, new.id, new.name)
        if new.id == deal.status_id and target == current:
            return deal_dict(deal)
        if target is not None:
            domain.check_stage_move(process, current, target)
        reason = self._loss_reason(new.kind, loss_reason_id)
        self._move(deal, new, target, user_id, reason,
                   domain.text(loss_comment, "loss_comment", required=False, limit=2000) or None)
        return deal_dict(deal)

    @rpc
    def change_stage(self, deal_id: int, stage: str, user_id: int | None = None,
                     version: int | None = None, loss_reason_id: int | None = None,
                     loss_comment: str | None = None) -> dict[str, Any]:
        """Move a deal to a stage (by code) of its type's process."""
        deal = self._locked_current(deal_id, version)
        process = self._process(deal.type_id)
        target = process.by_code(str(stage))
        if target is None:
            raise ValidationError(f"stage: the deal's process has no stage '{stage}'",
                                  field="stage")
        current = process.stage(deal.stage_id)
        if target == current:
            return deal_dict(deal)
        domain.check_stage_move(process, current, target)
        new = self.db.get(Status, target.status_id)
        reason = self._loss_reason(new.kind, loss_reason_id)
        self._move(deal, new, target, user_id, reason,
                   domain.text(loss_comment, "loss_comment", required=False, limit=2000) or None)
        return deal_dict(deal)

    @rpc
    def open_deals_for_contact(self, contact_id: int) -> list[int]:
        stmt = (select(Deal.id).join(DealContact).join(Status)
                .where(DealContact.contact_id == int(contact_id), Status.kind == "open"))
        return list(self.db.scalars(stmt))

    # --------------------------------------------------------------------- contacts
    @rpc
    def add_deal_contact(self, deal_id: int, data: dict[str, Any],
                         user_id: int | None = None) -> dict[str, Any]:
        """D7: ``{"contact_id": n}`` puts back one of the client's contacts; a new person
        (``name``, ``phones``...) is added to the client first (clients.add_contact), then
        to the deal."""
        deal = self._deal(deal_id, lock=True)
        if not isinstance(data, dict):
            raise ValidationError("contact: expected an object", field="contact")
        contact_id = domain.identifier(data.get("contact_id"), "contact_id", required=False)
        if contact_id is not None:
            contacts = {c["id"]: c for c in self._client(deal.client_id).get("contacts", [])}
            if contact_id not in contacts:
                raise ValidationError("contact_id: not a contact of the deal's client",
                                      field="contact_id")
            contact = contacts[contact_id]
        else:
            fields = {k: data[k] for k in ("name", "position", "phones", "emails") if k in data}
            contact = self.clients.add_contact(deal.client_id, fields, user_id=user_id)
        if any(c.contact_id == contact["id"] for c in deal.contacts):
            raise ValidationError("contact_id: already on this deal", field="contact_id")
        copy = DealContact(**domain.contact_copy(contact, is_main=not deal.contacts),
                           added_by=user_id)
        deal.contacts.append(copy)
        self._history(deal, "contact_added", None, copy.name, user_id)
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
        self._history(deal, "contact_removed", contact.name, None, user_id)
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
            self._history(deal, "main_contact", old, chosen.name, user_id)
        deal.version += 1

    # ------------------------------------------------------------------ the feed
    @rpc
    def add_comment(self, deal_id: int, text: str = "",
                    attachments: list[dict[str, Any]] | None = None,
                    user_id: int | None = None) -> dict[str, Any]:
        """A comment with files already stored by the gateway (``key``, ``name``, ``size``,
        ``content_type``)."""
        body, files = domain.validate_comment(text, attachments)
        deal = self._deal(deal_id)
        entry = self._feed(deal, "comment", body, user_id, None, attachments=files)
        assert entry is not None
        self.db.emit("comment_added", {"deal_id": deal.id, "client_id": deal.client_id,
                                       "comment_id": entry.id, "author_id": user_id,
                                       "manager_id": deal.manager_id,
                                       "files": len(files)})
        return feed_dict(entry)

    @rpc
    def add_email(self, deal_id: int, mail: dict[str, Any],
                  user_id: int | None = None) -> dict[str, Any]:
        """An e-mail with the deal's contact, in or out, as a feed line; the same
        ``message_id`` on the same deal is one line (a redelivered message changes
        nothing).  ``html`` must already be sanitised by the sender of this call."""
        cleaned = domain.validate_email_line(mail)
        deal = self._deal(deal_id)
        ref = domain.email_ref(cleaned["message_id"])
        entry = self._feed(deal, "email", cleaned["text"], user_id, ref,
                           data=cleaned["data"], attachments=cleaned["attachments"])
        if entry is None:
            entry = self.db.scalars(select(FeedEntry).where(
                FeedEntry.deal_id == deal.id, FeedEntry.kind == "email",
                FeedEntry.ref == ref)).one()
        return feed_dict(entry)

    @rpc
    def add_lead_line(self, deal_id: int, lead: dict[str, Any]) -> dict[str, Any]:
        """An inbox entry taken into the deal (who wrote, what, from which source); once
        per lead and deal."""
        cleaned = domain.validate_lead_line(lead)
        deal = self._deal(deal_id)
        ref = f"lead:{cleaned['lead_id']}"
        entry = self._feed(deal, "lead", cleaned["text"], None, ref, data=cleaned["data"],
                           attachments=cleaned["attachments"])
        if entry is None:
            entry = self.db.scalars(select(FeedEntry).where(
                FeedEntry.deal_id == deal.id, FeedEntry.kind == "lead",
                FeedEntry.ref == ref)).one()
        return feed_dict(entry)

    @rpc
    def set_email_status(self, deal_id: int, message_id: str, status: str,
                         error: str | None = None) -> dict[str, Any]:
        """An outbound e-mail's delivery outcome (sent / failed) on its feed line."""
        if status not in domain.EMAIL_STATUSES:
            raise ValidationError(f"status: one of {', '.join(domain.EMAIL_STATUSES)}",
                                  field="status")
        entry = self.db.scalars(select(FeedEntry).where(
            FeedEntry.deal_id == int(deal_id), FeedEntry.kind == "email",
            FeedEntry.ref == domain.email_ref(str(message_id))).with_for_update()).first()
        if entry is None:
            raise NotFound(f"e-mail {message_id} not on deal {deal_id}", entity="email",
                           id=message_id)
        entry.data = {**entry.data, "status": status, "error": (error or None) and error[:500]}
        return feed_dict(entry)

    @rpc
    def attachment(self, deal_id: int, key: str) -> dict[str, Any]:
        """The metadata of a file attached to one of the deal's comments (so a download
        link of another deal's file never works)."""
        deal = self._deal(deal_id)
        for attachments in self.db.scalars(select(FeedEntry.attachments).where(
                FeedEntry.deal_id == deal.id, FeedEntry.kind.in_(("comment", "email", "lead")),
                FeedEntry.attachments.contains([{"key": str(key)}]))):
            for item in attachments:
                if item.get("key") == key:
                    return dict(item)
        raise NotFound(f"file {key} not found on deal {deal.id}", entity="file", id=key)

    # ------------------------------------------------------------------- reminders
    @rpc
    def create_reminder(self, deal_id: int, data: dict[str, Any],
                        user_id: int | None = None) -> dict[str, Any]:
        cleaned = domain.validate_reminder(data, self.tz, user_id)
        if cleaned["assignee_id"] is None:
            raise ValidationError("assignee_id: whom is the reminder for?", field="assignee_id")
        deal = self._deal(deal_id, lock=True)
        reminder = self._add_reminder(deal, domain.TaskSpec(cleaned["text"], cleaned["due_at"],
                                                            cleaned["assignee_id"]),
                                      "manual", user_id)
        assert reminder is not None
        return reminder_dict(reminder, deal.name)

    @rpc
    def complete_reminder(self, reminder_id: int, user_id: int | None = None
                          ) -> dict[str, Any]:
        """Done: a line goes into the deal's feed (D8); completing twice changes nothing."""
        rid = domain.identifier(reminder_id, "reminder_id")
        reminder = self.db.scalars(select(Reminder).where(Reminder.id == rid)
                                   .with_for_update()).first()
        if reminder is None:
            raise NotFound(f"reminder {reminder_id} not found", entity="reminder",
                           id=reminder_id)
        # whoever the task is for may tick it off, on anyone's deal
        deal = self._deal(reminder.deal_id, lock=True, also=(reminder.assignee_id,))
        if reminder.completed_at is not None:
            return reminder_dict(reminder, deal.name)
        reminder.completed_at, reminder.completed_by = _now(), user_id
        self._refresh_next_reminder(deal)
        self._feed(deal, "reminder_done", reminder.text, user_id, f"reminder:{reminder.id}",
                   data={"reminder_id": reminder.id, "due_at": reminder.due_at.isoformat(),
                         "assignee_id": reminder.assignee_id})
        self.db.emit("reminder_completed", {
            "reminder_id": reminder.id, "deal_id": deal.id, "client_id": deal.client_id,
            "assignee_id": reminder.assignee_id, "completed_at": reminder.completed_at,
            "user_id": user_id})
        if reminder.source == "stage" and reminder.stage_id == deal.stage_id:
            still_open = self.db.scalar(select(func.count()).where(
                Reminder.deal_id == deal.id, Reminder.stage_id == deal.stage_id,
                Reminder.completed_at.is_(None)))
            if not still_open:
                self._apply_rule(deal, "tasks_done")
        return reminder_dict(reminder, deal.name)

    @rpc
    def list_reminders(self, client_id: int | None = None, deal_id: int | None = None,
                       user_id: int | None = None, open_only: bool = True,
                       roles: list[str] | None = None, limit: int = 100
                       ) -> list[dict[str, Any]]:
        """Reminders of a client, a deal, or for a user (with ``roles``: also the tasks
        made for one of those roles), soonest first."""
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
        return [reminder_dict(r, name) for r, name in self.db.execute(stmt).all()]

    @timer(interval=5)
    def announce_due_reminders(self) -> None:
        """Emit ``reminder_due`` once per reminder that came due.  Rows are claimed with
        SKIP LOCKED, so replicas running this timer share the work and never repeat it."""
        claimed = self.db.execute(
            select(Reminder, Deal.name).join(Deal, Deal.id == Reminder.deal_id)
            .where(Reminder.completed_at.is_(None), Reminder.due_emitted_at.is_(None),
                   Reminder.due_at <= _now())
            .order_by(Reminder.due_at).limit(DUE_BATCH)
            .with_for_update(of=Reminder, skip_locked=True)).all()
        for reminder, deal_name in claimed:
            reminder.due_emitted_at = _now()
            self.db.emit("reminder_due", {
                "reminder_id": reminder.id, "deal_id": reminder.deal_id,
                "client_id": reminder.client_id, "assignee_id": reminder.assignee_id,
                "assignee_role": reminder.assignee_role, "due_at": reminder.due_at,
                "text": reminder.text, "deal_name": deal_name})
        self.db.commit()

    # ------------------------------------------------------------------ orders
    @rpc
    def create_order(self, deal_id: int, data: dict[str, Any],
                     user_id: int | None = None) -> dict[str, Any]:
        cleaned = domain.validate_order(data, datetime.now(self.tz).date())
        catalogue_store.attach(self.db.session, cleaned["lines"])
        deal = self._deal(deal_id, lock=True)
        sequence = int(self.db.scalar(select(models.order_numbers.next_value())))
        order = Order(deal_id=deal.id, number=domain.order_number(sequence,
                                                                  cleaned["order_date"]),
                      order_date=cleaned["order_date"], status=cleaned["status"],
                      amount=cleaned["amount"], currency=deal.currency,
                      comment=cleaned["comment"], created_by=user_id, updated_by=user_id,
                      lines=[OrderLine(position=i, **line)
                             for i, line in enumerate(cleaned["lines"])])
        self.db.add(order)
        self.db.flush()
        self._history(deal, "order", None, f"{order.number} {order.amount}", user_id)
        self.db.emit("order_created", {"order_id": order.id, "deal_id": deal.id,
                                       "number": order.number, "amount": order.amount,
                                       "currency": order.currency, "user_id": user_id,
                                       "lines": catalogue.line_summary(cleaned["lines"])})
        return order_dict(order)

    @rpc
    def change_order_status(self, order_id: int, status: str, user_id: int | None = None,
                            version: int | None = None) -> dict[str, Any]:
        oid = domain.identifier(order_id, "order_id")
        order = self.db.scalars(select(Order).where(Order.id == oid).with_for_update()).first()
        if order is None:
            raise NotFound(f"order {order_id} not found", entity="order", id=order_id)
        if not domain.check_version(order.version, version):
            raise Conflict(f"order {order.number} was changed by someone else; reload it",
                           entity="order", id=order_id, version=order.version)
        if status not in domain.ORDER_STATUSES:
            raise ValidationError(f"status: one of {', '.join(domain.ORDER_STATUSES)}",
                                  field="status")
        if status != order.status:
            deal = self._deal(order.deal_id, lock=True)
            self._history(deal, f"order {order.number}", order.status, status, user_id)
            order.status, order.updated_by = status, user_id
            order.version += 1
        return order_dict(order)

    @rpc
    def list_orders(self, deal_id: int) -> list[dict[str, Any]]:
        return [order_dict(o) for o in self.db.scalars(
            select(Order).where(Order.deal_id == self._deal(deal_id).id)
            .order_by(Order.id.desc()))]

    # --------------------------------------------------------------- calculator
    @rpc
    def save_calculation(self, deal_id: int, lines: list[dict[str, Any]],
                         user_id: int | None = None, version: int | None = None
                         ) -> dict[str, Any]:
        """D11: the saved total becomes the deal's expected amount."""
        cleaned = domain.validate_lines(lines)
        catalogue_store.attach(self.db.session, cleaned)
        deal = self._locked_current(deal_id, version)
        calc = self.db.get(Calculation, deal.id)
        if calc is None:
            calc = Calculation(deal_id=deal.id, total=Decimal("0.00"), version=0)
            self.db.add(calc)
        calc.lines = [CalculationLine(position=i, **line) for i, line in enumerate(cleaned)]
        calc.total = domain.lines_total(cleaned)
        calc.saved_by, calc.saved_at = user_id, _now()
        calc.version += 1
        self.db.flush()
        self._apply_changes(deal, {"expected_amount": calc.total}, user_id)
        self.db.emit("calculation_saved", catalogue.lines_event(deal.id, calc.version,
                                                                calc.total, cleaned))
        return calculation_dict(calc)  # type: ignore[return-value]

    @rpc
    def create_payment_plan(self, deal_id: int, data: dict[str, Any],
                            user_id: int | None = None) -> list[dict[str, Any]]:
        """Seed the deal's payment plan in payments from the saved calculation: ``parts``
        equal payments a month apart from ``first_due_date``.  Done once per calculation
        (a second click is refused, not doubled)."""
        if not isinstance(data, dict):
            raise ValidationError("plan: expected an object", field="plan")
        deal = self._deal(deal_id, lock=True)
        calc = self.db.scalars(select(Calculation).where(Calculation.deal_id == deal.id)
                               .with_for_update()).first()
        if calc is None:
            raise ValidationError("calculation: save a calculation first", field="calculation")
        if calc.plan_created_at is not None:
            raise Conflict("the payment plan of this calculation was already created",
                           entity="calculation", id=deal.id)
        parts = domain.identifier(data.get("parts") or 1, "parts")
        first = domain.parse_day(data.get("first_due_date"), "first_due_date") or date.today()
        plan = domain.split_plan(calc.total, int(parts or 1), first)
        # One call that writes the whole plan in payments (or nothing); the key makes a
        # retry after our own rollback return the plan made, not a second one.
        created = self.payments.add_payment_plan(
            deal.id, [{"amount": str(amount), "due_date": due.isoformat(),
                       "currency": deal.currency, "comment": f"{i}/{len(plan)}"}
                      for i, (amount, due) in enumerate(plan, 1)], user_id,
            idempotency_key=f"deal-plan:{deal.id}:{calc.version}")
        calc.plan_created_at = _now()
        self._history(deal, "payment_plan", None, f"{len(plan)} × {calc.total}", user_id)
        return created

    # -------------------------------------------------------------- environment
    @rpc
    def add_party(self, deal_id: int, data: dict[str, Any],
                  user_id: int | None = None) -> dict[str, Any]:
        cleaned = domain.validate_party(data)
        deal = self._deal(deal_id, lock=True)
        if cleaned["client_id"] is not None and not cleaned["name"]:
            cleaned["name"] = self._client(cleaned["client_id"])["name"]
        party = Party(deal_id=deal.id, created_by=user_id, **cleaned)
        self.db.add(party)
        self.db.flush()
        self._history(deal, cleaned["role"], None, party.name, user_id)
        return party_dict(party)

    @rpc
    def remove_party(self, deal_id: int, party_id: int, user_id: int | None = None) -> None:
        deal = self._deal(deal_id, lock=True)
        party = self.db.get(Party, domain.identifier(party_id, "party_id"))
        if party is None or party.deal_id != deal.id:
            raise NotFound(f"party {party_id} not found on deal {deal.id}", entity="party",
                           id=party_id)
        self._history(deal, party.role, party.name, None, user_id)
        self.db.delete(party)

    # ---------------------------------------------------------- events consumed
    @consumes("payments", "budget_changed")
    def on_budget_changed(self, event: Envelope) -> None:
        deal = self.db.scalars(select(Deal).where(Deal.id == int(event.data["deal_id"]))
                               .with_for_update(of=Deal)).first()
        if deal is None:
            raise NotFound(f"budget for unknown deal {event.data['deal_id']}")
        revision = int(event.data["revision"])
        if revision <= deal.budget_revision:
            return
        deal.budget_revision = revision
        deal.budget = Decimal(str(event.data["budget"]))
        deal.paid = Decimal(str(event.data.get("paid", "0")))
        deal.outstanding = Decimal(str(event.data.get("outstanding", "0")))
        amount = domain.effective_amount(deal.expected_amount, deal.budget, True)
        if deal.amount != amount:
            self._history(deal, "amount", deal.amount, amount, event.data.get("user_id"))
            change = {"amount": {"from": deal.amount, "to": amount}}
            deal.amount = amount
            deal.version += 1
            self.db.emit("deal_updated", {
                "deal_id": deal.id, "name": deal.name, "client_id": deal.client_id,
                "manager_id": deal.manager_id, "previous_manager_id": deal.manager_id,
                "changes": change, "user_id": event.data.get("user_id"),
                "version": deal.version})
        if deal.outstanding == 0 and deal.paid > 0:
            self._apply_rule(deal, "fully_paid")

    @consumes("payments", "payment_received")
    def on_payment_received(self, event: Envelope) -> None:
        data = event.data
        deal = self.db.scalars(select(Deal).where(Deal.id == int(data["deal_id"]))
                               .with_for_update(of=Deal)).first()
        if deal is None:
            raise NotFound(f"payment for unknown deal {data['deal_id']}")
        self._feed(deal, "receipt", "", data.get("user_id"), f"receipt:{data['receipt_id']}",
                   data={k: data.get(k) for k in ("receipt_id", "payment_id", "amount",
                                                  "currency", "received_on", "source")})
        self._apply_rule(deal, "payment_received")

    def _document_line(self, event: Envelope, action: str) -> None:
        """A line in the deal's feed for each thing that happened to one of its documents
        (every view too: the manager sees when the client came back)."""
        data = event.data
        deal = self.db.scalars(select(Deal).where(Deal.id == int(data["deal_id"]))
                               .with_for_update(of=Deal)).first()
        if deal is None:
            raise NotFound(f"document of unknown deal {data['deal_id']}")
        self._feed(deal, "document", str(data.get("title") or ""), data.get("user_id"),
                   f"document:{event.event_id}",
                   data={"action": action, "document_id": data.get("document_id"),
                         "kind": data.get("kind"), "number": data.get("number"),
                         "comment": data.get("comment"), "views": data.get("views")})

    @consumes("documents", "document_generated")
    def on_document_generated(self, event: Envelope) -> None:
        self._document_line(event, "generated")

    @consumes("documents", "document_viewed")
    def on_document_viewed(self, event: Envelope) -> None:
        self._document_line(event, "viewed")

    @consumes("documents", "document_approved")
    def on_document_approved(self, event: Envelope) -> None:
        self._document_line(event, "approved")

    @consumes("documents", "document_declined")
    def on_document_declined(self, event: Envelope) -> None:
        self._document_line(event, "declined")

    @consumes("documents", "document_signed")
    def on_document_signed(self, event: Envelope) -> None:
        self._document_line(event, "signed")

    @consumes("documents", "questionnaire_filled")
    def on_questionnaire_filled(self, event: Envelope) -> None:
        """The client's answers as a feed line (question and answer, in order)."""
        data = event.data
        deal = self.db.scalars(select(Deal).where(Deal.id == int(data["deal_id"]))
                               .with_for_update(of=Deal)).first()
        if deal is None:
            raise NotFound(f"questionnaire of unknown deal {data['deal_id']}")
        self._feed(deal, "questionnaire", str(data.get("name") or ""), None,
                   f"questionnaire:{data['questionnaire_id']}",
                   data={"questionnaire_id": data["questionnaire_id"],
                         "answers": [{"label": a.get("label"), "text": a.get("text")}
                                     for a in data.get("answers") or []]})

    @consumes("telephony", "call_finished")
    def on_call_finished(self, event: Envelope) -> None:
        """A missed inbound call from a known contact: a "call back" task for the manager
        of each open deal with that contact."""
        call = event.data
        if not domain.needs_call_back(call):
            return
        ids = {int(i) for i in call.get("deal_ids") or []}
        ids |= set(self.db.scalars(select(DealContact.deal_id)
                                   .where(DealContact.contact_id == int(call["contact_id"]))))
        deals = self.db.scalars(select(Deal).join(Status).where(Deal.id.in_(ids),
                                                                Status.kind == "open")
                                .with_for_update(of=Deal)).all()
        due = datetime.fromisoformat(str(call.get("ended_at") or call.get("started_at")))
        due = due if due.tzinfo else due.replace(tzinfo=UTC)
        number = call.get("other_e164") or call.get("other_number") or ""
        for deal in deals:
            self._add_reminder(deal, domain.TaskSpec(CALL_BACK_TEXT.format(number=number),
                                                     due, deal.manager_id),
                               "call", None, dedup_key=f"call:{call['id']}:{deal.id}")

    @consumes("clients", "client_merged")
    def on_client_merged(self, event: Envelope) -> None:
        survivor, merged = int(event.data["survivor_id"]), int(event.data["merged_id"])
        user_id = event.data.get("user_id")
        deals = self.db.scalars(select(Deal).where(Deal.client_id == merged)
                                .with_for_update(of=Deal)).all()
        if not deals:
            return
        name = self.clients.get_client(survivor)["name"]
        for deal in deals:
            self._history(deal, "client_id", merged, survivor, user_id)
            deal.client_id, deal.client_name = survivor, name
            deal.version += 1
            self.db.emit("deal_updated", {
                "deal_id": deal.id, "name": deal.name, "client_id": survivor,
                "manager_id": deal.manager_id, "previous_manager_id": deal.manager_id,
                "changes": {"client_id": {"from": merged, "to": survivor}},
                "user_id": user_id, "version": deal.version})
        self.db.execute(update(Reminder).where(Reminder.client_id == merged)
                        .values(client_id=survivor))
        self.db.execute(update(Party).where(Party.client_id == merged)
                        .values(client_id=survivor))

    @consumes("clients", "contact_added")
    def on_contact_added(self, event: Envelope) -> None:
        """A client's first contact joins its open deals that have none yet, as main
        (a deal made before the client had contacts).  Deals that have contacts keep the
        set their managers chose."""
        contact, client_id = event.data["contact"], int(event.data["client_id"])
        deals = self.db.scalars(select(Deal).join(Status).where(
            Deal.client_id == client_id, Status.kind == "open", ~Deal.contacts.any())
            .with_for_update(of=Deal)).all()
        for deal in deals:
            deal.contacts.append(DealContact(**domain.contact_copy(contact, is_main=True)))
            self._history(deal, "contact_added", None, contact["name"], None)

    # ------------------------------------------------------------ product catalogue
    # (rules in catalogue.py, queries in catalogue_store.py; the gateway lets only
    # administrators call the writes)
    @rpc
    def list_products(self, q: str | None = None, include_inactive: bool = False,
                      limit: int = 50) -> list[dict[str, Any]]:
        terms = catalogue.search_terms(q)
        return [catalogue_store.product_dict(p) for p in catalogue_store.search(
            self.db.session, terms, bool(include_inactive), int(limit))]

    @rpc
    def get_product(self, product_id: int) -> dict[str, Any]:
        row = self.db.get(models.Product, domain.identifier(product_id, "product_id"))
        if row is None:
            raise NotFound("product not found", entity="product", id=product_id)
        return catalogue_store.product_dict(row)

    @rpc
    def save_product(self, data: dict[str, Any], user_id: int | None = None
                     ) -> dict[str, Any]:
        """Create (no ``id``) or change a catalogue item; retire it with ``active`` false."""
        product = catalogue.validate_product(data)
        product_id = domain.identifier(data.get("id"), "id", required=False)
        version = parse_version(data.get("version"))
        row = catalogue_store.save(self.db.session, product_id, product, version, user_id)
        return catalogue_store.product_dict(row)

    @rpc
    def import_products(self, content_b64: str, filename: str, user_id: int | None = None
                        ) -> dict[str, Any]:
        """A CSV/XLSX price list, checked whole before anything is written."""
        try:
            content = base64.b64decode(content_b64, validate=True)
        except (ValueError, TypeError):
            raise ValidationError("Файл не прочитан.", "file",
                                  key="catalogue.import.broken") from None
        products = catalogue.parse_import(content, str(filename or ""))
        return catalogue_store.import_rows(self.db.session, products, user_id)

    @rpc
    def list_product_lines(self) -> list[str]:
        return catalogue_store.product_lines(self.db.session)
