"""Entrypoints of reminders (D9): by hand, from a stage's tasks, after a missed call; the
timer that announces the due ones."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.deals import domain, store
from services.deals.base import DealsBase
from services.deals.schemas import reminder_dict
from services.deals.store import now as _now
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import ValidationError
from services.kit.timer import every


class RemindersEntrypoints(DealsBase):
    """Reminders (D9): set by hand, by a stage, by a missed call; announced when due."""

    # ------------------------------------------------------------- reminders
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
