"""Deals service: deals, their processes, contacts, feed, reminders, orders, calculator and
environment (MISSION D1–D12).  Entry points only: load (store.py), ask the rules
(domain.py), apply, emit."""
from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from nameko.dependency_providers import Config

from services.deals import board, catalogue, catalogue_store, domain, models, reference, store
from services.deals.models import (
    Calculation,
    CalculationLine,
    Deal,
    DealContact,
    DealType,
    LossReason,
    Order,
    OrderLine,
    Party,
    Reminder,
    Stage,
    Status,
)
from services.deals.schemas import (
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
from services.deals.store import now as _now
from services.kit import clock
from services.kit.dependencies import CallLog, Permissions, Remote, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import Conflict, NotFound, ValidationError
from services.kit.parse import version as parse_version
from services.kit.service import HealthCheck
from services.kit.timer import every


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
        return clock.business_zone(self.config)

    def _deal(self, deal_id: int, lock: bool = False, also: tuple[int | None, ...] = ()
              ) -> Deal:
        """The deal; ``lock`` for a change, which the acting user must be allowed to make
        (the permission matrix: a manager changes only the deals they manage)."""
        deal = store.find_deal(self.db, deal_id, lock)
        if lock:
            self.may.check("deals", [deal.manager_id, *also], f"deal {deal.id}")
        return deal

    def _locked_current(self, deal_id: int, version: int | None) -> Deal:
        deal = self._deal(deal_id, lock=True)
        if not domain.check_version(deal.version, version):
            raise Conflict(f"deal {deal_id} was changed by someone else; reload it",
                           entity="deal", id=deal_id, version=deal.version)
        return deal

    def _client(self, client_id: int) -> dict[str, Any]:
        try:
            return self.clients.get_client(client_id)
        except NotFound:
            raise ValidationError(f"client_id: client {client_id} not found",
                                  field="client_id", key="deal.client_unknown",
                                  params={"client_id": client_id}) from None

    def _add_reminder(self, deal: Deal, spec: domain.TaskSpec, source: str,
                      created_by: int | None, stage_id: int | None = None,
                      dedup_key: str | None = None) -> Reminder | None:
        reminder = store.add_reminder(self.db, deal, spec, source, created_by, stage_id,
                                      dedup_key)
        if reminder is not None:
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
        """Put the deal into ``status``/``stage`` (domain.move): history, tasks, events."""
        reason = domain.Reason(loss_reason.id, loss_reason.name) if loss_reason else None
        outcome = domain.move(deal, store.status_ref(deal.status), store.stage_ref(deal.stage),
                              store.status_ref(status), store.stage_ref(stage),
                              user_id=user_id, now=_now(), reason=reason,
                              comment=loss_comment, by_rule=by_rule)
        if outcome is None:
            return
        deal.status = status
        for field, old, new in outcome.history:
            store.add_history(self.db, deal, field, old, new, user_id)
        if outcome.enters_stage:
            self._enter_stage(deal, stage, user_id)
        for key, value in outcome.fields.items():
            setattr(deal, key, value)
        for event, payload in outcome.events:
            self.db.emit(event, payload)

    def _apply_rule(self, deal: Deal, trigger: str) -> None:
        """A stage's rule moves the deal on by itself (D5), e.g. fully paid -> won."""
        process = store.process_of(self.db, deal.type_id)
        target = domain.rule_target(process, process.stage(deal.stage_id), trigger)
        if target is not None and target.id != deal.stage_id:
            self._move(deal, self.db.get(Status, target.status_id), target, None,
                       by_rule=trigger)

    # ------------------------------------------------------------- reference lists
    @rpc
    def reference_lists(self, reference_revision: int | None = None) -> dict[str, Any]:
        """``reference_revision`` (the current one) and, unless the caller's is already
        that, the statuses, active process types with their stages and active loss
        reasons (services/deals/reference.py)."""
        return self._reference(reference_revision)

    def _reference(self, known: object) -> dict[str, Any]:
        current = reference.revision(self.db)  # before the lists: see reference.revision
        if reference.is_current(known, current):
            return {"reference_revision": current}
        return {"reference_revision": current,
                "statuses": [status_dict(s) for s in store.statuses(self.db)],
                "types": store.types(self.db), "loss_reasons": store.reasons(self.db)}

    @rpc
    def list_statuses(self) -> list[dict[str, Any]]:
        return [status_dict(s) for s in store.statuses(self.db)]

    @rpc
    def save_status(self, data: dict[str, Any], user_id: int | None = None) -> dict[str, Any]:
        """Create (no ``id``) or rename/recolour a status; deals refer to its id, so a
        rename never loses one.  Changing ``kind`` of a status in use is refused."""
        cleaned = domain.validate_status(data)
        status_id = domain.identifier(data.get("id"), "id", required=False)
        if status_id is None:
            code = cleaned.pop("code", None) or ""
            if code and store.code_count(self.db, code):
                raise ValidationError(f"code: '{code}' is taken", field="code",
                                      key="status.code_taken", params={"code": code})
            # a unique placeholder until the id names it: two statuses created at once
            # must not both hold "" under the unique constraint
            status = Status(position=store.next_position(self.db, Status.position),
                            code=code or f"new-{uuid.uuid4().hex}")
            self.db.add(status)
        else:
            status = self.db.get(Status, status_id)
            if status is None:
                raise NotFound(f"status {status_id} not found", entity="status", id=status_id)
            cleaned.pop("code", None)  # the code is what API clients name; it stays
            if cleaned["kind"] != status.kind and store.deals_in_status(self.db, status.id):
                raise ValidationError("kind: deals are in this status; the kind cannot change",
                                      field="kind", key="status.kind_in_use",
                                      params={"kind": status.kind})
        for key, value in cleaned.items():
            setattr(status, key, value)
        status.updated_by = user_id
        self.db.flush()
        if status.code.startswith("new-"):
            status.code = f"status_{status.id}"
        if store.code_count(self.db, status.code) > 1:
            raise ValidationError(f"code: '{status.code}' is taken", field="code",
                                  key="status.code_taken", params={"code": status.code})
        return status_dict(status)

    @rpc
    def reorder_statuses(self, status_ids: list[int], user_id: int | None = None
                         ) -> list[dict[str, Any]]:
        statuses = {s.id: s for s in store.statuses(self.db)}
        for position, status_id in enumerate(domain.check_order(status_ids, statuses), 1):
            statuses[status_id].position = position * 10
            statuses[status_id].updated_by = user_id
        return [status_dict(s) for s in store.statuses(self.db)]

    @rpc
    def delete_status(self, status_id: int, user_id: int | None = None) -> None:
        status = self.db.get(Status, domain.identifier(status_id, "status_id"))
        if status is None:
            raise NotFound(f"status {status_id} not found", entity="status", id=status_id)
        domain.check_status_removal(status.kind, *store.status_removal_counts(self.db, status))
        self.db.delete(status)

    @rpc
    def list_loss_reasons(self, include_inactive: bool = False) -> list[dict[str, Any]]:
        return store.reasons(self.db, include_inactive)

    @rpc
    def save_loss_reason(self, data: dict[str, Any], user_id: int | None = None
                         ) -> dict[str, Any]:
        """Create, rename or retire (``active`` false) a loss reason."""
        if not isinstance(data, dict):
            raise ValidationError("loss_reason: expected an object", field="loss_reason",
                                  key="deal.object_expected", params={"field": "loss_reason"})
        reason_id = domain.identifier(data.get("id"), "id", required=False)
        if reason_id is None:
            reason = LossReason(position=store.next_position(self.db, LossReason.position),
                                active=True)
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
        return store.types(self.db, include_inactive)

    @rpc
    def save_deal_type(self, data: dict[str, Any], user_id: int | None = None
                       ) -> dict[str, Any]:
        """Create or replace a deal type with its process.  Stages are matched by ``id``;
        a stage that deals are in cannot be dropped."""
        kinds = {s.id: s.kind for s in store.statuses(self.db)}
        cleaned = domain.validate_deal_type(data, kinds)
        type_id = domain.identifier(data.get("id"), "id", required=False)
        if type_id is None:
            deal_type = DealType(position=store.next_position(self.db, DealType.position),
                                 active=True)
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
        store.replace_stages(self.db, deal_type, cleaned["stages"])
        return type_dict(self.db.get(DealType, deal_type.id))

    # ------------------------------------------------------------------------ deals
    @rpc
    def create_deal(self, data: dict[str, Any], user_id: int | None = None) -> dict[str, Any]:
        cleaned = domain.validate_new_deal(data)
        process = domain.Process()
        if cleaned["type_id"] is not None:
            process = store.process_of(self.db,
                                       store.active_type(self.db, cleaned["type_id"]).id)
        if cleaned["status"]:
            status = store.status_by_code(self.db, cleaned["status"])
        elif process.stages:
            status = self.db.get(Status, process.stages[0].status_id)
        else:
            status = next(s for s in store.statuses(self.db) if s.kind == "open")
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
        store.add_history(self.db, deal, "created", None, deal.name, user_id)
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
    def deal_page(self, deal_id: int, reference_revision: int | None = None
                  ) -> dict[str, Any]:
        """Everything the deal page shows from this service, in one answer; the reference
        lists (statuses, types, loss reasons) only when ``reference_revision`` is not the
        current one (services/deals/reference.py)."""
        deal = self._deal(deal_id)
        result = {**deal_dict(deal), **store.page_parts(self.db, deal)}
        result["history"] = store.history_of(self.db, deal.id, 300)
        result.update(self._reference(reference_revision))
        result["loss_reason"] = (reason_dict(self.db.get(LossReason, deal.loss_reason_id))
                                 if deal.loss_reason_id else None)
        return result

    @rpc
    def deal_history(self, deal_id: int, limit: int = 500) -> list[dict[str, Any]]:
        return store.history_of(self.db, self._deal(deal_id).id, min(int(limit), 5000))

    @rpc
    def list_deals(self, manager_id: int | None = None, status: str | None = None,
                   client_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        status_id = store.status_by_code(self.db, status).id if status else None
        return [deal_dict(d) for d in store.deals(self.db, manager_id, status_id, client_id,
                                                  limit)]

    @rpc
    def deals_with_history(self, after: int | None = None, limit: int = 500
                           ) -> dict[str, Any]:
        """A keyset page (by id) of deals with the history a projection replays."""
        after_id = domain.identifier(after, "after", required=False) or 0
        return store.deals_with_history(self.db, after_id, max(1, min(int(limit), 5000)))

    @rpc
    def board(self, filters: dict[str, Any] | None = None, per_column: int = 20
              ) -> dict[str, Any]:
        """The kanban's first screen: every column's count, sum and first page."""
        return board.board(self.db.session, domain.parse_filter(filters),
                           store.statuses(self.db), self.tz, per_column)

    @rpc
    def board_column(self, status: str, filters: dict[str, Any] | None = None,
                     after: int | None = None, limit: int = 20) -> dict[str, Any]:
        return board.column_page(self.db.session, domain.parse_filter(filters),
                                 store.statuses(self.db), self.tz,
                                 store.status_by_code(self.db, status),
                                 domain.identifier(after, "after", required=False), limit)

    @rpc
    def search_deals(self, filters: dict[str, Any] | None = None, after: int | None = None,
                     limit: int = 50) -> dict[str, Any]:
        """The table mode: a keyset page of deals matching ``filters``, newest first."""
        return board.table_page(self.db.session, domain.parse_filter(filters),
                                store.statuses(self.db), self.tz,
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
        diff = domain.changes_between(domain.editable_fields(deal, deal.expected_amount),
                                      cleaned)
        if not diff:
            return False
        client = self._client(cleaned["client_id"]) if "client_id" in diff else None
        stage = None
        if "type_id" in diff:
            new_type = cleaned["type_id"]
            process = store.process_of(
                self.db, store.active_type(self.db, new_type).id if new_type else None)
            stage = domain.stage_for_status(process, None, deal.status_id, deal.status.name,
                                            field="type_id")
        previous_manager = deal.manager_id
        result = domain.edit(deal, diff, cleaned, user_id=user_id, client=client,
                             old_stage=store.stage_ref(deal.stage),
                             new_stage=store.stage_ref(stage), budget=deal.budget,
                             has_plan=deal.budget_revision > 0)
        # the stage's tasks go to the manager the deal had (as before the split)
        for key, value in result.fields.items():
            if key != "manager_id":
                setattr(deal, key, value)
        if client is not None:
            store.set_reminders_client(self.db, deal)
        if result.enters_stage:
            self._enter_stage(deal, stage, user_id)
        if "manager_id" in result.fields:
            deal.manager_id = result.fields["manager_id"]
        for key, change in result.changes.items():
            store.add_history(self.db, deal, key, change["from"], change["to"], user_id)
        self.db.emit("deal_updated", domain.deal_updated(
            deal, result.changes, user_id, version=deal.version,
            previous_manager_id=previous_manager))
        return True

    def _move_checked(self, deal: Deal, new: Status, target: domain.Stage | None,
                      user_id: int | None, loss_reason_id: int | None,
                      loss_comment: str | None) -> dict[str, Any]:
        reason = store.loss_reason(self.db, new.kind, loss_reason_id)
        self._move(deal, new, target, user_id, reason,
                   domain.text(loss_comment, "loss_comment", required=False, limit=2000) or None)
        return deal_dict(deal)

    @rpc
    def change_status(self, deal_id: int, status: str, user_id: int | None = None,
                      version: int | None = None, loss_reason_id: int | None = None,
                      loss_comment: str | None = None) -> dict[str, Any]:
        """Move a deal to a common status (a kanban drop); its process picks the stage and
        may refuse the move (``MoveRefused`` as a ValidationError naming ``status``)."""
        deal = self._locked_current(deal_id, version)
        new = store.status_by_code(self.db, status)
        process = store.process_of(self.db, deal.type_id)
        current = process.stage(deal.stage_id)
        target = domain.stage_for_status(process, current, new.id, new.name)
        if new.id == deal.status_id and target == current:
            return deal_dict(deal)
        if target is not None:
            domain.check_stage_move(process, current, target)
        return self._move_checked(deal, new, target, user_id, loss_reason_id, loss_comment)

    @rpc
    def change_stage(self, deal_id: int, stage: str, user_id: int | None = None,
                     version: int | None = None, loss_reason_id: int | None = None,
                     loss_comment: str | None = None) -> dict[str, Any]:
        """Move a deal to a stage (by code) of its type's process."""
        deal = self._locked_current(deal_id, version)
        process = store.process_of(self.db, deal.type_id)
        target = process.by_code(str(stage))
        if target is None:
            raise ValidationError(f"stage: the deal's process has no stage '{stage}'",
                                  field="stage", key="deal.stage_unknown",
                                  params={"stage": str(stage)})
        current = process.stage(deal.stage_id)
        if target == current:
            return deal_dict(deal)
        domain.check_stage_move(process, current, target)
        return self._move_checked(deal, self.db.get(Status, target.status_id), target,
                                  user_id, loss_reason_id, loss_comment)

    @rpc
    def open_deals_for_contact(self, contact_id: int) -> list[int]:
        return store.open_deal_ids_for_contact(self.db, contact_id)

    # --------------------------------------------------------------------- contacts
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

    # ------------------------------------------------------------------ the feed
    @rpc
    def add_comment(self, deal_id: int, text: str = "",
                    attachments: list[dict[str, Any]] | None = None,
                    user_id: int | None = None) -> dict[str, Any]:
        """A comment with files already stored by the gateway (``key``, ``name``, ``size``,
        ``content_type``)."""
        body, files = domain.validate_comment(text, attachments)
        deal = self._deal(deal_id)
        entry = store.add_feed(self.db, deal, "comment", body, user_id, None, attachments=files)
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
        entry = (store.add_feed(self.db, deal, "email", cleaned["text"], user_id, ref,
                                data=cleaned["data"], attachments=cleaned["attachments"])
                 or store.feed_line(self.db, deal, "email", ref))
        return feed_dict(entry)

    @rpc
    def add_lead_line(self, deal_id: int, lead: dict[str, Any]) -> dict[str, Any]:
        """An inbox entry taken into the deal (who wrote, what, from which source); once
        per lead and deal."""
        cleaned = domain.validate_lead_line(lead)
        deal = self._deal(deal_id)
        ref = f"lead:{cleaned['lead_id']}"
        entry = (store.add_feed(self.db, deal, "lead", cleaned["text"], None, ref,
                                data=cleaned["data"], attachments=cleaned["attachments"])
                 or store.feed_line(self.db, deal, "lead", ref))
        return feed_dict(entry)

    @rpc
    def set_email_status(self, deal_id: int, message_id: str, status: str,
                         error: str | None = None) -> dict[str, Any]:
        """An outbound e-mail's delivery outcome (sent / failed) on its feed line."""
        domain.check_choice(status, "status", domain.EMAIL_STATUSES)
        entry = store.email_line(self.db, deal_id, message_id)
        if entry is None:
            raise NotFound(f"e-mail {message_id} not on deal {deal_id}", entity="email",
                           id=message_id)
        entry.data = {**entry.data, "status": status, "error": (error or None) and error[:500]}
        return feed_dict(entry)

    @rpc
    def attachment(self, deal_id: int, key: str) -> dict[str, Any]:
        """The metadata of a file attached to one of the deal's comments (so a download
        link of another deal's file never works)."""
        return store.attachment(self.db, self._deal(deal_id), key)

    # ------------------------------------------------------------------- reminders
    @rpc
    def create_reminder(self, deal_id: int, data: dict[str, Any],
                        user_id: int | None = None) -> dict[str, Any]:
        cleaned = domain.validate_reminder(data, self.tz, user_id)
        if cleaned["assignee_id"] is None:
            raise ValidationError("assignee_id: whom is the reminder for?", field="assignee_id",
                                  key="required")
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
        reminder = store.locked_reminder(self.db, reminder_id)
        # whoever the task is for may tick it off, on anyone's deal
        deal = self._deal(reminder.deal_id, lock=True, also=(reminder.assignee_id,))
        if reminder.completed_at is not None:
            return reminder_dict(reminder, deal.name)
        reminder.completed_at, reminder.completed_by = _now(), user_id
        store.refresh_next_reminder(self.db, deal)
        store.add_feed(self.db, deal, "reminder_done", reminder.text, user_id,
                       f"reminder:{reminder.id}",
                       data={"reminder_id": reminder.id, "due_at": reminder.due_at.isoformat(),
                             "assignee_id": reminder.assignee_id})
        self.db.emit("reminder_completed", {
            "reminder_id": reminder.id, "deal_id": deal.id, "client_id": deal.client_id,
            "assignee_id": reminder.assignee_id, "completed_at": reminder.completed_at,
            "user_id": user_id})
        if (reminder.source == "stage" and reminder.stage_id == deal.stage_id
                and not store.open_stage_tasks(self.db, deal)):
            self._apply_rule(deal, "tasks_done")
        return reminder_dict(reminder, deal.name)

    @rpc
    def list_reminders(self, client_id: int | None = None, deal_id: int | None = None,
                       user_id: int | None = None, open_only: bool = True,
                       roles: list[str] | None = None, limit: int = 100
                       ) -> list[dict[str, Any]]:
        """Reminders of a client, a deal, or for a user (with ``roles``: also the tasks
        made for one of those roles), soonest first."""
        return store.reminders(self.db, client_id, deal_id, user_id, open_only, roles, limit)

    @every("REMINDER_TICK_SECONDS", 5)
    def announce_due_reminders(self) -> int:
        """Emit ``reminder_due`` once per reminder that came due (store claims the rows
        with SKIP LOCKED, so replicas share the work and never repeat it)."""
        claimed = store.claim_due_reminders(self.db)
        for reminder, deal_name in claimed:
            reminder.due_emitted_at = _now()
            self.db.emit("reminder_due", {
                "reminder_id": reminder.id, "deal_id": reminder.deal_id,
                "client_id": reminder.client_id, "assignee_id": reminder.assignee_id,
                "assignee_role": reminder.assignee_role, "due_at": reminder.due_at,
                "text": reminder.text, "deal_name": deal_name})
        self.db.commit()
        return len(claimed)

    # ------------------------------------------------------------------ orders
    @rpc
    def create_order(self, deal_id: int, data: dict[str, Any],
                     user_id: int | None = None) -> dict[str, Any]:
        cleaned = domain.validate_order(data, clock.business_today(self.config))
        catalogue_store.attach(self.db.session, cleaned["lines"])
        deal = self._deal(deal_id, lock=True)
        sequence = store.next_order_number(self.db)
        order = Order(deal_id=deal.id, number=domain.order_number(sequence,
                                                                  cleaned["order_date"]),
                      order_date=cleaned["order_date"], status=cleaned["status"],
                      amount=cleaned["amount"], currency=deal.currency,
                      comment=cleaned["comment"], created_by=user_id, updated_by=user_id,
                      lines=[OrderLine(position=i, **line)
                             for i, line in enumerate(cleaned["lines"])])
        self.db.add(order)
        self.db.flush()
        store.add_history(self.db, deal, "order", None, f"{order.number} {order.amount}",
                          user_id)
        self.db.emit("order_created", {"order_id": order.id, "deal_id": deal.id,
                                       "number": order.number, "amount": order.amount,
                                       "currency": order.currency, "user_id": user_id,
                                       "lines": catalogue.line_summary(cleaned["lines"])})
        return order_dict(order)

    @rpc
    def change_order_status(self, order_id: int, status: str, user_id: int | None = None,
                            version: int | None = None) -> dict[str, Any]:
        order = store.locked_order(self.db, order_id)
        if not domain.check_version(order.version, version):
            raise Conflict(f"order {order.number} was changed by someone else; reload it",
                           entity="order", id=order_id, version=order.version)
        domain.check_choice(status, "status", domain.ORDER_STATUSES)
        if status != order.status:
            deal = self._deal(order.deal_id, lock=True)
            store.add_history(self.db, deal, f"order {order.number}", order.status, status,
                              user_id)
            order.status, order.updated_by = status, user_id
            order.version += 1
        return order_dict(order)

    @rpc
    def list_orders(self, deal_id: int) -> list[dict[str, Any]]:
        return store.orders(self.db, self._deal(deal_id).id)

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
            raise ValidationError("plan: expected an object", field="plan",
                                  key="deal.object_expected", params={"field": "plan"})
        deal = self._deal(deal_id, lock=True)
        calc = store.locked_calculation(self.db, deal.id)
        if calc is None:
            raise ValidationError("calculation: save a calculation first", field="calculation",
                                  key="deal.calculation_missing")
        if calc.plan_created_at is not None:
            raise Conflict("the payment plan of this calculation was already created",
                           entity="calculation", id=deal.id)
        parts = domain.identifier(data.get("parts") or 1, "parts")
        first = (domain.parse_day(data.get("first_due_date"), "first_due_date")
                 or clock.business_today(self.config))
        plan = domain.split_plan(calc.total, int(parts or 1), first)
        # One call that writes the whole plan in payments (or nothing); the key makes a
        # retry after our own rollback return the plan made, not a second one.
        created = self.payments.add_payment_plan(
            deal.id, [{"amount": str(amount), "due_date": due.isoformat(),
                       "currency": deal.currency, "comment": f"{i}/{len(plan)}"}
                      for i, (amount, due) in enumerate(plan, 1)], user_id,
            idempotency_key=f"deal-plan:{deal.id}:{calc.version}")
        calc.plan_created_at = _now()
        store.add_history(self.db, deal, "payment_plan", None, f"{len(plan)} × {calc.total}",
                          user_id)
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
        store.add_history(self.db, deal, cleaned["role"], None, party.name, user_id)
        return party_dict(party)

    @rpc
    def remove_party(self, deal_id: int, party_id: int, user_id: int | None = None) -> None:
        deal = self._deal(deal_id, lock=True)
        party = self.db.get(Party, domain.identifier(party_id, "party_id"))
        if party is None or party.deal_id != deal.id:
            raise NotFound(f"party {party_id} not found on deal {deal.id}", entity="party",
                           id=party_id)
        store.add_history(self.db, deal, party.role, party.name, None, user_id)
        self.db.delete(party)

    # ---------------------------------------------------------- events consumed
    def _event_deal(self, deal_id: object, what: str) -> Deal:
        deal = store.locked_deal(self.db, int(deal_id))  # type: ignore[call-overload]
        if deal is None:
            raise NotFound(f"{what} of unknown deal {deal_id}")
        return deal

    @consumes("payments", "budget_changed")
    def on_budget_changed(self, event: Envelope) -> None:
        deal = self._event_deal(event.data["deal_id"], "budget")
        revision = int(event.data["revision"])
        if revision <= deal.budget_revision:
            return
        deal.budget_revision = revision
        deal.budget = Decimal(str(event.data["budget"]))
        deal.paid = Decimal(str(event.data.get("paid", "0")))
        deal.outstanding = Decimal(str(event.data.get("outstanding", "0")))
        amount = domain.effective_amount(deal.expected_amount, deal.budget, True)
        if deal.amount != amount:
            user_id = event.data.get("user_id")
            store.add_history(self.db, deal, "amount", deal.amount, amount, user_id)
            change = {"amount": {"from": deal.amount, "to": amount}}
            deal.amount = amount
            deal.version += 1
            self.db.emit("deal_updated", domain.deal_updated(deal, change, user_id,
                                                             version=deal.version))
        if deal.outstanding == 0 and deal.paid > 0:
            self._apply_rule(deal, "fully_paid")

    @consumes("payments", "payment_received")
    def on_payment_received(self, event: Envelope) -> None:
        data = event.data
        deal = self._event_deal(data["deal_id"], "payment")
        store.add_feed(self.db, deal, "receipt", "", data.get("user_id"),
                       f"receipt:{data['receipt_id']}",
                       data={k: data.get(k) for k in ("receipt_id", "payment_id", "amount",
                                                      "currency", "received_on", "source")})
        self._apply_rule(deal, "payment_received")

    def _document_line(self, event: Envelope, action: str) -> None:
        """A line in the deal's feed for each thing that happened to one of its documents
        (every view too: the manager sees when the client came back)."""
        data = event.data
        deal = self._event_deal(data["deal_id"], "document")
        store.add_feed(self.db, deal, "document", str(data.get("title") or ""),
                       data.get("user_id"), f"document:{event.event_id}",
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
        deal = self._event_deal(data["deal_id"], "questionnaire")
        store.add_feed(self.db, deal, "questionnaire", str(data.get("name") or ""), None,
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
        deals = store.open_deals_to_call_back(
            self.db, {int(i) for i in call.get("deal_ids") or []}, int(call["contact_id"]))
        due = datetime.fromisoformat(str(call.get("ended_at") or call.get("started_at")))
        due = due if due.tzinfo else due.replace(tzinfo=UTC)
        text = domain.call_back_text(call.get("other_e164") or call.get("other_number") or "")
        for deal in deals:
            self._add_reminder(deal, domain.TaskSpec(text, due, deal.manager_id),
                               "call", None, dedup_key=f"call:{call['id']}:{deal.id}")

    @consumes("clients", "client_merged")
    def on_client_merged(self, event: Envelope) -> None:
        survivor, merged = int(event.data["survivor_id"]), int(event.data["merged_id"])
        user_id = event.data.get("user_id")
        deals = store.client_deals(self.db, merged)
        if not deals:
            return
        name = self.clients.get_client(survivor)["name"]
        for deal in deals:
            store.add_history(self.db, deal, "client_id", merged, survivor, user_id)
            deal.client_id, deal.client_name = survivor, name
            deal.version += 1
            self.db.emit("deal_updated", domain.deal_updated(
                deal, {"client_id": {"from": merged, "to": survivor}}, user_id,
                version=deal.version))
        store.move_client_rows(self.db, merged, survivor)

    @consumes("clients", "contact_added")
    def on_contact_added(self, event: Envelope) -> None:
        """A client's first contact joins its open deals that have none yet, as main
        (a deal made before the client had contacts).  Deals that have contacts keep the
        set their managers chose."""
        contact, client_id = event.data["contact"], int(event.data["client_id"])
        for deal in store.open_deals_without_contacts(self.db, client_id):
            deal.contacts.append(DealContact(**domain.contact_copy(contact, is_main=True)))
            store.add_history(self.db, deal, "contact_added", None, contact["name"], None)

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

    @rpc
    def history_columns(self, after: int | None = None, limit: int = 10_000) -> dict[str, Any]:
        """Every deal's replayable history in columns, by keyset pages (history.py)."""
        from services.deals.history import history_columns
        return history_columns(self.db, after, limit)
