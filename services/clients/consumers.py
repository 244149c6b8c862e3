"""What other services tell the clients service: calls and completed reminders move a
client's last contact (C6), reminders feed the "no open reminder" filter, analytics'
RFM segments feed the list's segment filter.  Each event is applied once (the kit's
inbox); one about a merged client applies to its survivor."""
from __future__ import annotations

from services.clients import store
from services.clients.domain.inputs import event_time
from services.clients.domain.segments import segment_changes
from services.kit.dependencies import Work
from services.kit.entrypoints import consumes
from services.kit.envelope import Envelope
from services.kit.errors import ValidationError
from services.kit.parse import identifier


class ConsumersEntrypoints:
    db: Work

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
        if client_id is not None:
            store.open_reminder(self.db, reminder_id(event), client_id,
                                event.data.get("deal_id"))

    @consumes("deals", "reminder_completed")
    def on_reminder_completed(self, event: Envelope) -> None:
        client_id = self._client_of(event)
        if client_id is None:
            return
        done = event_time(event.data.get("completed_at") or event.occurred_at, "completed_at")
        store.complete_reminder(self.db, reminder_id(event), client_id,
                                event.data.get("deal_id"), done)
        store.touch(self.db, client_id, done)

    @consumes("analytics", "client_segments_changed")
    def on_client_segments_changed(self, event: Envelope) -> None:
        """The list's RFM segment filter reads the segments analytics computed; an older
        computation arriving late changes nothing."""
        store.set_segments(self.db, segment_changes(event.data))


def reminder_id(event: Envelope) -> str:
    value = event.data.get("reminder_id")
    if value is None:
        raise ValidationError("В событии не сказано, какая это задача.", field="reminder_id",
                              key="required")
    return str(value)
