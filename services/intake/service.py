"""Intake service: the one inbox of new enquiries ("Неразобранное") — website forms, the
lead API, e-mail, unknown calls — and the three ways out of it (accept, attach, reject).
See docs/decisions/0009-lead-intake.md.  The big parts' entrypoints are in their own
files, which this class inherits: forms.py, api_keys.py, emails.py, mailboxes.py (IMAP),
accept.py; what they share is part.py, their queries store.py."""
from __future__ import annotations

import logging
import time
from typing import Any

from nameko.dependency_providers import Config

from services.intake import domain, models, store
from services.intake.accept import AcceptEntrypoints
from services.intake.api_keys import ApiKeysEntrypoints
from services.intake.forms import FormsEntrypoints
from services.intake.mailboxes import MailboxEntrypoints
from services.intake.schemas import lead_dict
from services.kit import clock
from services.kit.dependencies import CallLog, Remote, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import Conflict, ValidationError
from services.kit.service import HealthCheck
from services.kit.timer import every

log = logging.getLogger("crm.intake")
DUPLICATES_BATCH = 200  # leads looked up in one call to clients (three statements there)
DUPLICATES_TICK_BUDGET = 1.5  # seconds of one tick; the next tick goes on


class IntakeService(FormsEntrypoints, ApiKeysEntrypoints, MailboxEntrypoints,
                    AcceptEntrypoints, HealthCheck):
    name = "intake"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    config = Config()
    clients = Remote("clients")
    deals = Remote("deals")
    telephony = Remote("telephony")
    notifications = Remote("notifications")

    @rpc
    def get_settings(self) -> dict[str, Any]:
        return store.settings(self.db)

    @rpc
    def set_settings(self, changes: dict[str, Any], user_id: int | None = None
                     ) -> dict[str, Any]:
        merged = domain.clean_settings(store.settings(self.db), changes)
        store.save_settings(self.db, merged)
        log.info("inbox settings changed by %s: %s", user_id, sorted(changes))
        return merged

    @rpc
    def record_lead(self, source: str, data: dict[str, Any], external_id: str | None = None,
                    source_name: str = "") -> dict[str, Any]:
        """A lead another service heard of (a questionnaire filled by someone unknown);
        once per ``(source, external_id)``."""
        if source not in ("questionnaire",):
            raise ValidationError("source: only questionnaire comes this way",
                                  field="source", key="lead.source")
        lead, created = self._make(source, domain.clean_lead(data),
                                   source_name=str(source_name or "")[:200],
                                   external_id=str(external_id)[:200] if external_id else None,
                                   **domain.clean_marketing(data))
        return {**lead_dict(lead), "created": created}

    @consumes("telephony", "call_finished")
    def on_call_finished(self, event: Envelope) -> None:
        """An inbound call from a number no contact has becomes an inbox entry."""
        call = event.data
        if call.get("direction") != "inbound" or call.get("contact_id") or \
                not call.get("other_e164"):
            return
        self._call_lead(call)

    @rpc
    def list_leads(self, status: str | None = "new", limit: int = 50, offset: int = 0,
                   assignee_id: int | None = None) -> dict[str, Any]:
        """The inbox, newest first; bots' submissions are never listed."""
        total, items = store.page_of_leads(self.db, status, limit, offset, assignee_id)
        return {"total": total, "items": [lead_dict(x) for x in items]}

    @rpc
    def count_open(self) -> int:
        """For the menu: entries waiting for someone."""
        return store.count_open(self.db)

    @rpc
    def get_lead(self, lead_id: int) -> dict[str, Any]:
        lead = store.lead(self.db, lead_id)
        if lead.duplicates is None and lead.status == "new":
            self._find_duplicates([lead])
        return lead_dict(lead)

    @every("DUPLICATES_TICK_SECONDS", 2)
    def fill_duplicates(self) -> int:
        """Duplicates are looked up after the lead is stored, so a submission never
        waits on the clients service.  A burst (hundreds of website submissions a
        second) is worked off in the same tick, a batch at a time, each committed, until
        none is pending or the tick's time is up: at one batch a tick the inbox would
        show a burst's leads without their duplicates for minutes."""
        done, deadline = 0, time.monotonic() + DUPLICATES_TICK_BUDGET
        while True:
            pending = store.claim_without_duplicates(self.db, DUPLICATES_BATCH)
            found = self._find_duplicates(pending)
            self.db.commit()
            done += len(pending)
            if not found or len(pending) < DUPLICATES_BATCH or time.monotonic() > deadline:
                return done

    @rpc
    def reject_lead(self, lead_id: int, user_id: int | None = None,
                    reason: str = "spam") -> dict[str, Any]:
        lead = store.lead(self.db, lead_id, lock=True)
        status = "spam" if reason == "spam" else "rejected"
        if lead.status == status:
            return lead_dict(lead)
        if lead.status != "new":
            raise Conflict(f"Заявка №{lead.id} уже разобрана ({lead.status}).",
                           entity="lead", id=lead.id, key="lead.decided")
        self._decided(lead, status, user_id)
        lead.reject_reason = str(reason or "")[:200]
        self.db.flush()
        self.db.emit("lead_rejected", {"lead_id": lead.id, "reason": lead.reject_reason,
                                       "user_id": user_id})
        return lead_dict(lead)

    @rpc
    def attach_lead(self, lead_id: int, deal_id: int, user_id: int | None = None
                    ) -> dict[str, Any]:
        """The lead's message into an open deal's feed; the lead is then ``attached``."""
        target = domain.an_id(deal_id, "deal_id")
        lead = store.lead(self.db, lead_id, lock=True)
        if lead.status == "attached" and lead.deal_id == target:
            return lead_dict(lead)
        if lead.status != "new":
            raise Conflict(f"Заявка №{lead.id} уже разобрана ({lead.status}).",
                           entity="lead", id=lead.id, key="lead.decided")
        deal = self.deals.get_deal(target)
        if deal["status"]["kind"] != "open":
            raise ValidationError("Сделка закрыта: выберите открытую.", field="deal_id",
                                  key="lead.deal_closed")
        self._feed_line(lead, target)
        lead.deal_id, lead.client_id = target, deal["client_id"]
        self._decided(lead, "attached", user_id)
        self.db.flush()
        self.db.emit("lead_attached", {"lead_id": lead.id, "deal_id": target,
                                       "client_id": deal["client_id"], "user_id": user_id,
                                       "source": lead.source, "utm": lead.utm,
                                       "page_url": lead.page_url,
                                       "referrer": lead.referrer})
        return lead_dict(lead)

    @every("OVERDUE_TICK_SECONDS", 15)
    def escalate_overdue(self) -> int:
        """An entry nobody took in time: the heads are told, once per lead."""
        settings = store.settings(self.db)
        late = store.claim_overdue(self.db, clock.now())
        for lead in late:
            lead.escalated_at = clock.now()
            self.db.emit("lead_overdue", {
                "lead_id": lead.id, "who": domain.who(lead_dict(lead)),
                "assignee_id": lead.assignee_id, "head_ids": settings["head_user_ids"],
                "respond_by": lead.respond_by})
        self.db.commit()
        return len(late)

    @rpc
    def bench_counts(self, since_id: int = 0) -> dict[str, int]:
        """Leads per source after ``since_id`` (for the benchmark's loss count)."""
        return store.counts_by_source(self.db, since_id)

    @rpc
    def last_lead_id(self) -> int:
        return store.last_lead_id(self.db)
