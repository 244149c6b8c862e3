"""The common ground of the deals service's parts (service.py and the ``*Entrypoints``
classes it inherits): loading a deal under the permission matrix, applying an edit or a
move that domain.py decided, making a reminder.  Rules stay in domain.py, queries in
store.py; these only apply and emit."""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from services.deals import domain, store
from services.deals.models import Deal, LossReason, Reminder, Stage, Status
from services.deals.store import now as _now
from services.kit import clock
from services.kit.errors import Conflict, NotFound, ValidationError


class DealsBase:
    """What every part of the deals service shares: the dependencies (declared here, provided
    by ``DealsService``) and the steps of loading, editing and moving a deal."""

    db: Any  # UnitOfWork: the session plus ``emit``
    config: Any
    clients: Any  # Remote("clients")
    payments: Any  # Remote("payments")
    may: Any  # Permissions

    # ------------------------------------------------------------ shared steps
    @property
    def tz(self) -> ZoneInfo:
        return clock.business_zone(self.config)

    def _deal(self, deal_id: int, lock: bool = False, also: tuple[int | None, ...] = (),
              contacts: bool = False) -> Deal:
        """The deal; ``lock`` for a change, which the acting user must be allowed to make
        (the permission matrix: a manager changes only the deals they manage);
        ``contacts`` for a read that shows them (one statement, not two)."""
        deal = store.find_deal(self.db, deal_id, lock, contacts)
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

    def _event_deal(self, deal_id: object, what: str) -> Deal:
        deal = store.locked_deal(self.db, int(deal_id))  # type: ignore[call-overload]
        if deal is None:
            raise NotFound(f"{what} of unknown deal {deal_id}")
        return deal
