"""Telephony service: call records from the PBX, matched to contacts (MISSION T1–T4).

Every source — Asterisk AMI, Mango Office and Zadarma webhooks, the API — becomes pieces
of a call (``domain.Piece``) merged into one row per ``(provider, provider_call_id)``.
"""
from __future__ import annotations

import logging
from typing import Any

from services.kit import clock
from services.kit.dependencies import CallLog, Remote, UnitOfWork
from services.kit.entrypoints import rpc
from services.kit.errors import Conflict, Forbidden, NotFound, ValidationError
from services.kit.service import HealthCheck
from services.kit.timer import every
from services.telephony import domain, models, store
from services.telephony.extensions import PbxWebhooks, RecordingWorker, ami_notice
from services.telephony.models import Call, WebhookLog
from services.telephony.schemas import call_dict, recording_file, webhook_dict

log = logging.getLogger("crm.telephony")

ATTRIBUTION_TRIES = 5  # then call_finished goes out without a contact rather than never


class TelephonyService(HealthCheck):
    name = "telephony"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    clients = Remote("clients")
    deals = Remote("deals")
    pbx = PbxWebhooks()
    recordings = RecordingWorker()

    # -- matching (T2) ------------------------------------------------------------------
    def _attribution(self, number: str | None) -> dict[str, Any] | None:
        """The contact, client and open deals of ``number``; None when clients or deals
        could not be asked now (the call is then matched later by ``retry_attribution``)."""
        if not number:
            return {"contact_id": None, "contact_name": None, "client_id": None,
                    "deal_ids": []}
        try:
            contact = self.clients.find_contact_by_phone(number)
            deal_ids = (list(self.deals.open_deals_for_contact(contact["id"]))
                        if contact else [])
        except Exception as exc:  # timeout, service down, its bug: match later
            log.warning("matching %s to a contact failed: %s", number, exc)
            return None
        if contact is None:
            return {"contact_id": None, "contact_name": None, "client_id": None,
                    "deal_ids": []}
        return {"contact_id": contact["id"], "contact_name": contact.get("name"),
                "client_id": contact["client_id"], "deal_ids": sorted(set(deal_ids))}

    def _attribute(self, call: Call) -> bool:
        found = self._attribution(call.other_number)
        call.attribution_attempts += 1
        if found is None:
            return False
        for key, value in found.items():
            setattr(call, key, value)
        call.attributed_at = clock.now()
        return True

    # -- intake -------------------------------------------------------------------------
    def _ingest(self, event: Any) -> Call:
        piece = domain.piece_of(event)
        call = store.call_to_merge(self.db, piece.provider, piece.provider_call_id)
        current = {name: getattr(call, name) for name in domain.CALL_FIELDS}
        merged = domain.merge(call.status, current, piece)
        if not merged.changed:
            return call
        for key, value in merged.values.items():
            setattr(call, key, value)
        call.revision += 1
        call.updated_at = clock.now()
        if merged.recording_changed:
            call.recording_status = "pending"
            call.recording_attempts = 0
            call.recording_error = None
            call.recording_next_at = clock.now()
            self.recordings.queued()
        if merged.started and not call.started_published:
            self._attribute(call)
            call.started_published = True
            self.db.flush()
            self.db.emit("call_started", call_dict(call))
        if merged.finished:
            # matched when it started, to the same number: no need to ask again
            matched = call.attributed_at is not None and "other_number" not in merged.values
            if matched or self._attribute(call):
                self._publish_finished(call)
        elif call.finished_published:
            self.db.flush()
            self.db.emit("call_updated", call_dict(call))
        return call

    def _publish_finished(self, call: Call) -> None:
        call.finished_published = True
        self.db.flush()
        self.db.emit("call_finished", call_dict(call))
        if call.recording_status == "pending":
            self.recordings.queued()

    @ami_notice
    def on_ami_notice(self, event: Any) -> None:
        """A call notice assembled from the Asterisk AMI stream."""
        self._ingest(event)
        self.db.commit()

    @every("ATTRIBUTION_RETRY_SECONDS", 5)
    def retry_attribution(self) -> int:
        """Finished calls whose matching failed (clients or deals were down): try again;
        after ``ATTRIBUTION_TRIES`` publish them unmatched rather than never."""
        pending = store.unpublished_finished(self.db)
        for call in pending:
            if self._attribute(call) or call.attribution_attempts >= ATTRIBUTION_TRIES:
                self._publish_finished(call)
        self.db.commit()
        return len(pending)

    # -- RPC ----------------------------------------------------------------------------
    @rpc
    def record_call(self, data: dict[str, Any]) -> dict[str, Any]:
        """A finished call reported through the API (T1); repeating it changes nothing."""
        record = domain.call_from_input(data, self.pbx.allowed_recording_hosts)
        return call_dict(self._ingest(record))

    @rpc
    def list_calls(self, deal_id: int | None = None, client_id: int | None = None,
                   limit: int = 100, contact_id: int | None = None, unknown: bool = False,
                   include_live: bool = False, offset: int = 0) -> list[dict[str, Any]]:
        """Calls newest first; finished ones only unless ``include_live``."""
        statuses = ["finished", "live"] if include_live else ["finished"]
        found = store.calls(
            self.db, statuses, max(1, min(int(limit), 500)), max(0, int(offset)),
            deal_id=int(deal_id) if deal_id is not None else None,
            client_id=int(client_id) if client_id is not None else None,
            contact_id=int(contact_id) if contact_id is not None else None, unknown=unknown)
        return [call_dict(c) for c in found]

    def _call(self, call_id: Any, lock: bool = False) -> Call:
        try:
            key = int(call_id)
        except (TypeError, ValueError):
            raise ValidationError(f"«{call_id}» — не номер звонка.", field="call_id",
                                  key="id.invalid", params={"value": str(call_id)}) from None
        call = store.call(self.db, key, lock)
        if call is None:
            raise NotFound(f"call {call_id} not found", entity="call", id=call_id)
        return call

    @rpc
    def get_call(self, call_id: int) -> dict[str, Any]:
        return call_dict(self._call(call_id))

    @rpc
    def recording_file(self, call_id: int) -> dict[str, Any]:
        """Where the call's recording is on the recordings volume (for the gateway)."""
        return recording_file(self._call(call_id))

    @rpc
    def retry_recording(self, call_id: int) -> dict[str, Any]:
        call = self._call(call_id, lock=True)
        if not call.recording_ref:
            raise Conflict(f"call {call.id} has no recording to fetch", entity="call", id=call.id)
        if call.recording_status != "stored":
            call.recording_status = "pending"
            call.recording_attempts = 0
            call.recording_next_at = clock.now()
            self.recordings.queued()
        return call_dict(call)

    @rpc
    def attach_call(self, call_id: int, contact_id: int, client_id: int,
                    deal_ids: list[int] | None = None, same_number: bool = True,
                    user_id: int | None = None,
                    contact_name: str | None = None) -> dict[str, Any]:
        """Attribute a call (and, with ``same_number``, the other unmatched calls from that
        number) to a contact, its client and deals — e.g. after a person created the client
        from an unknown call (T4)."""
        for name, value in (("contact_id", contact_id), ("client_id", client_id)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValidationError("Нужен номер записи — целое число больше нуля.", field=name,
                                      key="id.invalid", params={"value": str(value)})
        ids = deal_ids or []
        if not isinstance(ids, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in ids):
            raise ValidationError("Нужен список номеров сделок.", field="deal_ids",
                                  key="list.invalid")
        call = self._call(call_id, lock=True)
        return self._attach(call, contact_id, client_id, ids, same_number, user_id, contact_name)

    def _attach(self, call: Call, contact_id: int, client_id: int, ids: list[int],
                same_number: bool, user_id: int | None, contact_name: str | None
                ) -> dict[str, Any]:
        targets = [call]
        if same_number and call.other_e164:
            targets += store.unmatched_from(self.db, call)
        for target in targets:
            target.contact_id, target.client_id = contact_id, client_id
            target.deal_ids = sorted(set(ids))
            target.contact_name = (str(contact_name)[:300] if contact_name else None)
            target.attributed_at = clock.now()
            target.revision += 1
            target.updated_at = clock.now()
            self.db.flush()
            if target.status != "finished":
                continue
            if target.finished_published:
                self.db.emit("call_updated", call_dict(target))
            else:
                self._publish_finished(target)
        log.info("call %s attached to contact %s by user %s (%d calls)", call.id, contact_id,
                 user_id, len(targets))
        return call_dict(call)

    # -- webhooks (T1) ------------------------------------------------------------------
    def _webhook(self, provider: str, event: str, form: dict[str, str], handle: Any,
                 remote_addr: str | None) -> dict[str, Any]:
        digest = domain.payload_digest(provider, event, form)
        try:
            item = handle()  # verify first: a forged copy of a good payload is refused too
        except (Forbidden, ValidationError) as exc:
            outcome = "refused" if isinstance(exc, Forbidden) else "invalid"
            self.db.rollback()
            self.db.add(WebhookLog(provider=provider, event=event[:100], digest=digest,
                                   outcome=outcome, reason=str(exc)[:2000],
                                   remote_addr=remote_addr))
            self.db.commit()  # the refusal is recorded even though the call fails
            log.warning("%s webhook %s %s from %s: %s", provider, event, outcome,
                        remote_addr or "?", exc)
            raise
        if store.webhook_seen(self.db, provider, digest):
            return {"status": "duplicate"}
        outcome = "accepted" if item is not None else "ignored"
        logged = store.log_webhook(
            self.db, provider=provider, event=event[:100], digest=digest, outcome=outcome,
            provider_call_id=getattr(item, "provider_call_id", None), remote_addr=remote_addr)
        if not logged:  # the same payload, concurrently
            return {"status": "duplicate"}
        if item is None:
            return {"status": "ignored"}
        call = self._ingest(item)
        return {"status": "accepted", "call_id": call.id}

    @rpc
    def mango_webhook(self, event: str, form: dict[str, Any],
                      remote_addr: str | None = None) -> dict[str, Any]:
        """A Mango Office webhook, as POSTed (``event``: ``events/call``, ...)."""
        fields = domain.clean_form(form)
        name = str(event or "").strip().strip("/")
        adapter = self.pbx.mango
        if adapter is None:
            raise Forbidden("Mango webhooks are not configured (MANGO_API_KEY, MANGO_API_SALT)",
                            reason="not_configured")
        return self._webhook("mango", name, fields, lambda: adapter.handle(name, fields),
                             remote_addr)

    @rpc
    def zadarma_webhook(self, form: dict[str, Any], signature: str | None = None,
                        remote_addr: str | None = None) -> dict[str, Any]:
        """A Zadarma notification, as POSTed, with its ``Signature`` header."""
        fields = domain.clean_form(form)
        adapter = self.pbx.zadarma
        if adapter is None:
            raise Forbidden("Zadarma webhooks are not configured (ZADARMA_SECRET)",
                            reason="not_configured")
        event = fields.get("event", "")
        return self._webhook("zadarma", event, fields,
                             lambda: adapter.handle(fields, signature), remote_addr)

    @rpc
    def list_webhooks(self, outcome: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The webhook log, newest first (for administrators)."""
        return [webhook_dict(w) for w in store.webhooks(self.db, outcome, min(int(limit), 500))]

    @rpc
    def recording_backlog(self) -> dict[str, int]:
        """How many recordings wait, per status (for health pages and benchmarks)."""
        return store.recording_counts(self.db)

