"""Accepting a lead: client, contact and deal in a saga owned here (the plan stored first,
each step committed as it comes, resumed after a failure), and the unknown caller's call
accepted the same way."""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from services.intake import domain, store
from services.intake.models import (
    Lead,
)
from services.intake.part import IntakePart
from services.intake.schemas import (
    lead_dict,
)
from services.kit import clock
from services.kit.entrypoints import rpc
from services.kit.errors import (
    Conflict,
    CrmError,
    RemoteTimeout,
    ServiceUnavailable,
    ValidationError,
)
from services.kit.timer import every

log = logging.getLogger("crm.intake")
TRANSIENT = (RemoteTimeout, ServiceUnavailable)
MAX_ACCEPT_ATTEMPTS = 20  # then the lead stays "accepting" with its error, for a person
LEASE = timedelta(seconds=60)  # longer than the steps of one accept can take


class AcceptEntrypoints(IntakePart):
    @rpc
    def accept_call(self, call_id: int, names: dict[str, Any] | None = None,
                    user_id: int | None = None) -> dict[str, Any]:
        """An unknown caller's call → its inbox entry (made now if it is not there yet)
        accepted: a private-person client with the number, a deal, and the number's
        calls attached.  ``names``: ``client_name``, ``contact_name``, ``deal_name``."""
        call = self.telephony.get_call(domain.an_id(call_id, "call_id"))
        if call.get("contact_id"):
            raise Conflict("Звонок уже привязан к клиенту.", entity="call", id=call_id,
                           key="call.already_linked")
        if not call.get("other_e164"):
            raise ValidationError("У звонка нет номера, который можно сохранить.",
                                  field="other_number", key="call.no_number")
        lead = self._call_lead(call)
        self.db.commit()
        accepted = self.accept_lead(lead.id, user_id=user_id, data=names or {})
        plan = self.db.get(Lead, lead.id).accept_plan or {}
        client = self.clients.get_client(accepted["client_id"])
        contact = next((c for c in client.get("contacts") or []
                        if c["id"] == plan.get("contact_id")), None)
        return {"lead": accepted, "client": client, "contact": contact,
                "deal": self.deals.get_deal(accepted["deal_id"]),
                "call": self.telephony.get_call(call["id"])}

    @rpc
    def accept_lead(self, lead_id: int, user_id: int | None = None,
                    data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Client, contact and deal from the lead — or the deal for the client found as
        its duplicate.  A saga owned here: the plan is stored first, each step's result
        is committed as it comes, so a retry (a person's, or ``resume_accepts``) goes on
        from where it stopped and never creates anything twice."""
        lead = store.lead(self.db, lead_id, lock=True)
        if lead.status == "accepted":
            return lead_dict(lead)
        if lead.status not in domain.OPEN_STATUSES:
            raise Conflict(f"Заявка №{lead.id} уже разобрана ({lead.status}).",
                           entity="lead", id=lead.id, key="lead.decided")
        if lead.status == "new":
            lead.accept_plan = self._plan(lead, data or {}, user_id)
            lead.status = "accepting"
            lead.decided_by = user_id
        elif domain.leased(lead.accept_plan, clock.now()):
            raise Conflict(f"Заявка №{lead.id} уже принимается.", entity="lead", id=lead.id,
                           key="lead.accepting")
        self._run_accept(lead)
        return lead_dict(lead)

    def _plan(self, lead: Lead, data: dict[str, Any], user_id: int | None) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ValidationError("Ожидался объект.", field="body", key="lead.body")
        for key in ("client_name", "contact_name", "deal_name"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise ValidationError(f"{key}: текст", field=key, key="lead.not_text")
        client_id = data.get("client_id")
        contact_id = None
        if client_id is None:
            self._find_duplicates([lead])  # fresh: someone may have created the client since
            match = next(iter(lead.duplicates or []), None)
            if match is not None:
                client_id, contact_id = match["client_id"], match.get("contact_id")
        else:
            client_id = domain.an_id(client_id, "client_id")
            contact_id = next((m.get("contact_id") for m in lead.duplicates or []
                               if m["client_id"] == client_id), None)
        name = (data.get("client_name") or "").strip() or lead.company or lead.name or \
            lead.phone or lead.email
        deal_name = (data.get("deal_name") or "").strip() or \
            f"Заявка №{lead.id}: {domain.who(lead_dict(lead))}"[:300]
        return {"client_id": client_id, "contact_id": contact_id, "new_client": client_id is None,
                "client_name": name[:300], "deal_name": deal_name[:300],
                "contact_name": ((data.get("contact_name") or "").strip() or lead.name
                                 or name)[:300],
                "manager_id": lead.assignee_id or user_id, "user_id": user_id}

    def _run_accept(self, lead: Lead) -> None:
        """Runs under a lease (``plan.lease_until``), taken while the row is locked: the
        steps commit one by one, and nobody else runs them meanwhile."""
        plan = dict(lead.accept_plan or {})
        user_id = plan.get("user_id")
        lead.accept_attempts += 1
        plan["lease_until"] = (clock.now() + LEASE).isoformat()
        self._save_step(lead, plan)
        try:
            self._accept_steps(lead, plan, user_id)
        except CrmError as exc:
            self.db.rollback()
            plan.pop("lease_until", None)
            if isinstance(exc, TRANSIENT) or plan.get("client_id"):
                # Something exists already (or may): go forward later, never half-done.
                lead.accept_error = str(exc)[:2000]
                lead.accept_plan = plan
            else:
                # Nothing was created: the lead is back in the inbox as it was.
                lead.status, lead.accept_plan, lead.decided_by = "new", None, None
                lead.accept_attempts = 0
            self.db.commit()
            raise
        plan.pop("lease_until", None)
        lead.client_id, lead.contact_id = plan["client_id"], plan.get("contact_id")
        lead.deal_id = plan["deal_id"]
        lead.accept_error = None
        lead.accept_plan = plan
        self._decided(lead, "accepted", user_id)
        self.db.flush()
        self.db.emit("lead_accepted", {
            "lead_id": lead.id, "client_id": lead.client_id, "contact_id": lead.contact_id,
            "deal_id": lead.deal_id, "new_client": plan["new_client"], "user_id": user_id,
            "source": lead.source, "utm": lead.utm, "page_url": lead.page_url,
            "referrer": lead.referrer})

    def _save_step(self, lead: Lead, plan: dict[str, Any]) -> None:
        lead.accept_plan = dict(plan)
        self.db.commit()

    def _accept_steps(self, lead: Lead, plan: dict[str, Any], user_id: int | None) -> None:
        contact = {"name": plan.get("contact_name") or lead.name or plan["client_name"],
                   "phones": [lead.phone_e164] if lead.phone_e164 else [],
                   "emails": [lead.email] if lead.email else []}
        if plan.get("client_id") is None:
            adopted = None
            if lead.accept_attempts > 1:  # a crash may have left the client we asked for
                adopted = next(iter(self.clients.find_matches(
                    phone=lead.phone_e164, email=lead.email or None)), None)
            if adopted is not None:
                plan["client_id"], plan["contact_id"] = adopted["client_id"], \
                    adopted.get("contact_id")
            else:
                client = self.clients.create_client(
                    {"kind": "legal" if lead.inn else "person", "name": plan["client_name"],
                     **({"inn": lead.inn} if lead.inn else {}),
                     "manager_id": plan["manager_id"], "contacts": [contact]},
                    user_id=user_id, source="api")
                plan["client_id"] = client["id"]
                plan["contact_id"] = (client.get("contacts") or [{}])[0].get("id")
            self._save_step(lead, plan)
        if plan.get("contact_id") is None and (contact["phones"] or contact["emails"]):
            made = self.clients.add_contact(plan["client_id"], contact, user_id=user_id,
                                            source="api")
            plan["contact_id"] = made["id"]
            self._save_step(lead, plan)
        if plan.get("deal_id") is None:
            adopted_deal = None
            if lead.accept_attempts > 1:
                adopted_deal = next((d["id"] for d in self.deals.list_deals(
                    client_id=plan["client_id"], limit=50) if d["name"] == plan["deal_name"]),
                    None)
            source, detail = domain.deal_source(lead_dict(lead))
            plan["deal_id"] = adopted_deal or self.deals.create_deal(
                {"name": plan["deal_name"], "client_id": plan["client_id"],
                 "manager_id": plan["manager_id"], "source": source,
                 "source_detail": detail}, user_id=user_id)["id"]
            self._save_step(lead, plan)
        if not plan.get("feed_done"):
            self._feed_line(lead, plan["deal_id"])
            plan["feed_done"] = True
            self._save_step(lead, plan)
        if lead.source == "call" and not plan.get("call_done") and plan.get("contact_id"):
            self.telephony.attach_call(int(lead.external_id or 0), plan["contact_id"],
                                       plan["client_id"], [plan["deal_id"]], same_number=True,
                                       user_id=user_id, contact_name=contact["name"])
            plan["call_done"] = True
            self._save_step(lead, plan)

    @every("ACCEPT_RETRY_SECONDS", 10)
    def resume_accepts(self) -> int:
        """Accepts a failure or a crash left half-way: go on (forward recovery)."""
        done: list[int] = []
        for _ in range(10):  # one at a time: each step's commit ends the row lock
            lead = store.claim_unfinished_accept(self.db, done, MAX_ACCEPT_ATTEMPTS)
            if lead is None:
                break
            done.append(lead.id)
            if domain.leased(lead.accept_plan, clock.now()):
                continue
            try:
                self._run_accept(lead)
                self.db.commit()
            except CrmError as exc:
                log.warning("accept of lead %s still failing: %s", lead.id, exc)
        self.db.commit()
        return len(done)
