"""What every part of the intake service shares: its dependencies (the providers are on
``IntakeService``) and the few steps several parts take — making a lead (forms, the API,
mail, calls), looking up its duplicates, deciding it, and its line on a deal's feed."""
from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

from eventlet.greenpool import GreenPool
from nameko.exceptions import serialize

from services.intake import domain, store
from services.intake.domain import SOURCE_NAMES
from services.intake.models import Lead
from services.intake.schemas import lead_dict
from services.kit import clock
from services.kit.dependencies import Work, call_id_of
from services.kit.entrypoints import public_error
from services.kit.envelope import Envelope
from services.kit.errors import CrmError, ValidationError
from services.kit.group import Group
from services.kit.messaging import add_all_to_outbox

log = logging.getLogger("crm.intake")


def store_new_leads(rows: list[dict[str, Any]], provider: Any) -> list[Any]:
    """A batch of visible leads (``rows`` as ``_make`` builds them, with the
    ``event`` to publish and its ``call_id``): every lead and its ``lead_received`` in one
    transaction of the provider's own, committed before anyone is answered.  When the
    batch fails as a whole, each is tried alone, so a bad one sinks nobody else: each
    caller gets its own ``lead_received`` data, or its own error."""
    session = provider.factory()
    try:
        try:
            answers: list[Any] = list(_store_new_leads(session, provider.outbox, rows))
            session.commit()
        except Exception:
            session.rollback()
            if len(rows) == 1:
                raise
            answers = []
            for row in rows:
                try:
                    answers.extend(_store_new_leads(session, provider.outbox, [row]))
                    session.commit()
                except Exception as exc:
                    session.rollback()
                    answers.append(exc)
        provider.wake_relay()
        return answers
    finally:
        session.close()


def _store_new_leads(session: Any, outbox: Any, rows: list[dict[str, Any]]
                     ) -> list[dict[str, Any]]:
    stored = store.insert_new_leads(session, [
        {k: v for k, v in row.items() if k not in ("event", "call_id")} for row in rows])
    events = []
    for row, lead in zip(rows, stored, strict=True):
        data = {**row["event"], "lead_id": lead["id"], "assignee_id": lead["assignee_id"],
                "respond_by": lead["respond_by"]}
        events.append((Envelope.new("lead_received", data), row["call_id"]))
    add_all_to_outbox(session, outbox, events)
    return [e.data for e, _ in events]


def _lead_row(source: str, details: dict[str, Any], source_ref: str, source_name: str,
              external_id: str | None, hidden_reason: str | None, extra: dict[str, Any]
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The lead's details as stored, and its whole row."""
    values = {k: details.get(k) or "" for k in domain.LEAD_FIELDS}
    values["phone_e164"] = details.get("phone_e164")
    return values, {"source": source, "source_ref": source_ref,
                    "source_name": source_name[:200], "external_id": external_id,
                    **values, **extra, "hidden": hidden_reason is not None,
                    "status": "spam" if hidden_reason else "new",
                    "reject_reason": hidden_reason}


def _find_matches_many(queries: list[dict[str, Any]], clients: Any) -> list[Any]:
    return list(clients.find_matches_many(queries))


# Concurrent form submissions of one database share a transaction (group commit); the
# senders of concurrent inbound mail (per broker) are looked up in one call.
NEW_LEADS: dict[str, Group[dict[str, Any]]] = {}
SENDER_MATCHES: dict[str, Group[dict[str, Any]]] = {}
MAX_BATCH = 100  # items in one call of submit_forms / receive_mails


class IntakePart:
    db: Any
    config: Any
    clients: Any
    deals: Any
    telephony: Any
    notifications: Any

    def _each_alone(self, items: Any, one: Callable[[Any, dict[str, Any]], Any], what: str
                    ) -> list[dict[str, Any]]:
        """A batch another process gathered (one RPC for many: the broker round trip and
        this service's per-call work paid once): each item through ``one(service, item)``
        as if it had
        come alone — in a green thread and a unit of work of its own, committed or
        rolled back by itself, so one's error is its own, while the statements the
        items share (rate counters, the leads' insert, the senders' look-up) still go
        as one each.  One outcome per item, in order: ``{"result": ...}`` or
        ``{"error": ...}`` (nameko's serialised form of what it raised)."""
        if not isinstance(items, list) or not items:
            raise ValidationError("Ожидался непустой список.", field="items",
                                  key="batch.items")

        def alone(item: Any) -> dict[str, Any]:
            own = Work(self.db.provider.factory(), self.db.provider, self.db.worker_ctx)
            worker = copy.copy(self)  # this item's unit of work, the service's dependencies
            worker.db = own
            try:
                if not isinstance(item, dict):
                    raise ValidationError("Ожидался объект.", field="items",
                                          key="batch.items")
                result = one(worker, item)
                own.commit()
                return {"result": result}
            except CrmError as exc:
                own.session.rollback()
                return {"error": serialize(public_error(exc))}
            except Exception as exc:  # a bug: this item's caller gets a 500, not all
                own.session.rollback()
                log.exception("%s in a batch failed", what)
                return {"error": serialize(exc)}
            finally:
                own.session.close()

        too_many = {"error": serialize(ValidationError(
            f"Не больше {MAX_BATCH} в одном вызове.", field="items", key="batch.items"))}
        return list(GreenPool(min(len(items), MAX_BATCH)).imap(alone, items[:MAX_BATCH])) \
            + [too_many] * len(items[MAX_BATCH:])

    def _make(self, source: str, details: dict[str, Any], *, source_ref: str = "",
              source_name: str = "", external_id: str | None = None,
              candidates: list[int] | None = None, hidden_reason: str | None = None,
              settings: dict[str, Any] | None = None, **extra: Any) -> tuple[Lead, bool]:
        """Store a lead (once per source's own id); a visible one is assigned, its clock
        started and ``lead_received`` published.  (lead, created)."""
        values, row = _lead_row(source, details, source_ref, source_name, external_id,
                                hidden_reason, extra)
        if hidden_reason:
            lead = store.insert_lead(self.db, row)
        else:
            settings = settings or store.settings(self.db)
            lead = store.insert_lead(self.db, row, candidates or settings["duty_user_ids"],
                                     domain.response_time(settings["response_minutes"]))
        if lead is None:
            return store.lead_by_source_id(self.db, source, source_ref, external_id), False
        if hidden_reason:
            return lead, True
        self.db.emit("lead_received", {
            "lead_id": lead.id, "source": source, "source_name": lead_dict(lead)["source_name"],
            "who": domain.who(values), "assignee_id": lead.assignee_id,
            "respond_by": lead.respond_by})
        return lead, True

    def _make_together(self, source: str, details: dict[str, Any], *, source_ref: str,
                       source_name: str, candidates: list[int] | None,
                       settings: dict[str, Any], external_id: str | None = None,
                       **extra: Any) -> dict[str, Any]:
        """A visible lead stored as ``_make`` stores it, but in one transaction with the
        concurrent callers' (one statement, one commit for all), of its own and not the
        caller's unit of work; committed when this returns.  Its ``lead_received`` data.
        A repeat of the source's ``external_id`` fails with the database's IntegrityError
        (the caller's own: the others are stored)."""
        values, row = _lead_row(source, details, source_ref, source_name, external_id,
                                None, extra)
        provider = self.db.provider
        group = NEW_LEADS.setdefault(str(provider.engine.url), Group(store_new_leads))
        event = {"source": source, "source_name": row["source_name"]
                 or SOURCE_NAMES.get(source, source), "who": domain.who(values)}
        return dict(group({
            **row, "pool": list(candidates or settings["duty_user_ids"]),
            "respond_in": domain.response_time(settings["response_minutes"]),
            "event": event, "call_id": call_id_of(self.db.worker_ctx)}, provider))

    def _find_duplicates(self, leads: list[Lead]) -> bool:
        """Who these leads may already be, in one call to clients; False when clients
        cannot answer now (the leads are looked up again later)."""
        if not leads:
            return True
        try:
            found = self.clients.find_matches_many([
                {"phone": lead.phone_e164 or lead.phone or None,
                 "email": lead.email or None, "inn": lead.inn or None} for lead in leads])
        except CrmError as exc:
            log.warning("duplicates of leads %s not found now: %s",
                        [lead.id for lead in leads], exc)
            return False
        for lead, matches in zip(leads, found, strict=True):
            lead.duplicates = matches
        return True

    def _sender_matches(self, sender: str) -> list[dict[str, Any]]:
        """``clients.find_matches(email=sender)``, asked together with the concurrent
        messages' senders (one call for all)."""
        group = SENDER_MATCHES.setdefault(str(self.config.get("AMQP_URI")),
                                          Group(_find_matches_many))
        return list(group({"email": sender}, self.clients))

    def _decided(self, lead: Lead, status: str, user_id: int | None) -> None:
        lead.status = status
        lead.decided_by = lead.decided_by or user_id
        lead.decided_at = clock.now()

    def _feed_line(self, lead: Lead, deal_id: int) -> None:
        """The lead's message on the deal's feed: an e-mail as an e-mail line, anything
        else as a lead line; both keyed, so a retry writes nothing twice."""
        if lead.source == "email" and lead.mail_message_id:
            self.deals.add_email(deal_id, {
                "message_id": lead.mail_message_id, "direction": "in", "from": lead.email,
                "to": (lead.extra or {}).get("to", ""), "subject":
                (lead.extra or {}).get("subject", ""), "text": lead.message,
                "html": (lead.extra or {}).get("html", ""), "attachments": lead.attachments})
            store.remember_thread(self.db, lead.mail_message_id, deal_id, "in")
        else:
            self.deals.add_lead_line(deal_id, lead_dict(lead))

    def _call_lead(self, call: dict[str, Any]) -> Lead:
        outcome = call.get("outcome") or "answered"
        lead, _ = self._make("call", {"phone": call.get("other_number") or call["other_e164"],
                                      "phone_e164": call["other_e164"],
                                      "message": f"Входящий звонок ({outcome})"},
                             source_ref=str(call.get("provider") or ""),
                             external_id=str(call["id"]), extra={"call_id": call["id"]})
        return lead
