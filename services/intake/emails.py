"""E-mail in and out: a parsed inbound message threaded into a deal's feed or made a lead;
a manager's message to a contact through the notifications e-mail channel, and its
delivery status kept on the feed."""
from __future__ import annotations

import logging
from typing import Any

import nh3
from sqlalchemy.exc import IntegrityError

from services.intake import domain, store
from services.intake.models import (
    MailThread,
)
from services.intake.part import IntakePart
from services.kit import clock
from services.kit.entrypoints import rpc
from services.kit.errors import (
    CrmError,
    ServiceUnavailable,
    ValidationError,
)
from services.kit.timer import every

log = logging.getLogger("crm.intake")


class EmailEntrypoints(IntakePart):
    @rpc
    def receive_mail(self, mail: dict[str, Any]) -> dict[str, Any]:
        """One parsed inbound message (from the SMTP listener or the IMAP poller):
        into a deal's feed when it answers our correspondence or comes from a contact
        with an open deal; else a lead — unless it is an auto-reply or part of a flood.
        ``{"outcome": feed|lead|duplicate|auto_reply|flood, ...}``."""
        return self._receive_mail(mail, together=True)
    def _receive_mail(self, mail: dict[str, Any], assignee_id: int | None = None,
                      together: bool = False) -> dict[str, Any]:
        """``assignee_id``: the manager whose own mailbox it was read from (the lead is
        theirs, not the duty rota's).  ``together``: a lead is stored with the concurrent
        messages' (group commit; the listener's messages) rather than in the caller's unit
        of work (the IMAP poller's, which records the message's UID with it)."""
        message_id = str(mail.get("message_id") or "").strip()[:998]
        sender = str(mail.get("from") or "").strip().lower()[:320]
        if not message_id or "@" not in sender:
            raise ValidationError("Нужны message_id и from.", field="mail", key="mail.headers")
        if store.mail_seen(self.db, message_id):
            return {"outcome": "duplicate"}
        if domain.is_auto_reply(mail.get("headers") or {}):
            log.info("auto-reply %s from %s: no lead", message_id, sender)
            return {"outcome": "auto_reply"}
        html = nh3.clean(str(mail.get("html") or "")) if mail.get("html") else ""
        deal_id = self._thread_deal(mail, sender, release=together)
        if deal_id is not None:
            self.deals.add_email(deal_id, {
                "message_id": message_id, "direction": "in", "from": sender,
                "to": str(mail.get("to") or ""), "subject": str(mail.get("subject") or ""),
                "text": str(mail.get("text") or ""), "html": html,
                "attachments": mail.get("attachments") or []})
            self.db.add(MailThread(message_id=message_id, deal_id=deal_id, direction="in"))
            return {"outcome": "feed", "deal_id": deal_id}
        settings = store.recent_settings(self.db)
        minutes = settings["mail_flood_minutes"]
        hits = store.hits(self.db, [f"mail:{sender}"], minutes * 60)[f"mail:{sender}"]
        if hits > settings["mail_flood_limit"]:
            if hits == settings["mail_flood_limit"] + 1:
                self.db.emit("mail_flood", {
                    "sender": sender, "limit": settings["mail_flood_limit"],
                    "minutes": minutes, "admin_ids": settings["admin_user_ids"],
                    "window": domain.window_start(clock.now(), minutes * 60)})
            log.warning("mail flood from %s (%d in %d min): %s not made a lead", sender,
                        hits, minutes, message_id)
            return {"outcome": "flood"}
        subject = str(mail.get("subject") or "").strip()
        text = str(mail.get("text") or "").strip()
        details = {"name": str(mail.get("from_name") or "")[:300], "email": sender,
                   "message": (f"{subject}\n\n{text}" if subject else text)[:10_000]}
        lead: dict[str, Any] = {"source_ref": str(mail.get("mailbox") or "")[:100],
                "external_id": message_id[:200], "mail_message_id": message_id,
                "attachments": mail.get("attachments") or [],
                "candidates": [assignee_id] if assignee_id else None, "settings": settings,
                "extra": {"subject": subject[:500], "html": html[:100_000],
                          "to": str(mail.get("to") or "")[:320]}}
        if not together:
            made, _ = self._make("email", details, **lead)
            return {"outcome": "lead", "lead_id": made.id}
        try:
            return {"outcome": "lead", "lead_id":
                    self._make_together("email", details, source_name="", **lead)["lead_id"]}
        except IntegrityError:  # the same message, delivered twice at once: stored once
            if store.mail_seen(self.db, message_id):
                return {"outcome": "duplicate"}
            raise

    def _thread_deal(self, mail: dict[str, Any], sender: str, release: bool = False
                     ) -> int | None:
        """The deal a message belongs to: by the Message-IDs it answers first, then by a
        known contact's open deal (the newest).  ``release``: the reads so far are done
        with, so the connection goes back to the pool before this waits on the senders'
        shared look-up (not for the IMAP poller, whose unit of work holds more)."""
        answered = domain.thread_ids(mail.get("in_reply_to"), mail.get("references"))
        if answered:
            by_id = store.threads_of(self.db, answered)
            for mid in answered:
                if mid in by_id:
                    return by_id[mid]
        if release:
            self.db.commit()
        for match in self._sender_matches(sender):
            if match.get("contact_id"):
                deals = self.deals.open_deals_for_contact(match["contact_id"])
                if deals:
                    return int(max(deals))
        return None

    @rpc
    def send_email(self, deal_id: int, contact_id: int, subject: str, text: str,
                   user_id: int, request_id: str | None = None) -> dict[str, Any]:
        """A manager's e-mail to one of the deal's contacts, through the notifications
        e-mail channel; its Message-ID is remembered so the reply threads back into this
        deal, and it is on the deal's feed at once (``queued``, then ``sent`` or
        ``failed`` by ``sync_outbound``).  The same ``request_id`` sends once."""
        deal = self.deals.get_deal(domain.an_id(deal_id, "deal_id"))
        pid = domain.an_id(contact_id, "contact_id")
        contact = next((c for c in deal.get("contacts") or [] if c.get("contact_id") == pid),
                       None)
        if contact is None:
            raise ValidationError("Это не контакт сделки.", field="contact_id",
                                  key="email.contact")
        emails = contact.get("emails") or []
        if isinstance(emails, str):  # the deal keeps its copy as "a@x, b@y"
            emails = [e.strip() for e in emails.split(",") if e.strip()]
        address = next(iter(emails), None)
        if not address:
            raise ValidationError("У контакта нет e-mail.", field="contact_id",
                                  key="email.no_address")
        sent = self.notifications.send_to_contact(
            user_id, deal["client_id"], pid, "email", address, subject, text,
            request_id=request_id)
        message_id = sent.get("message_id")
        if not message_id:
            raise ServiceUnavailable("e-mail: the channel gave no Message-ID", field="channel")
        store.remember_thread(self.db, message_id, deal["id"], "out", status="queued",
                              client_message_id=sent["id"], client_id=deal["client_id"])
        self.db.commit()  # the reply must thread back even if the feed line fails now
        line = self._outbound_line(deal["id"], message_id, sent, "queued")
        return {"message": sent, "feed_entry": line}

    def _outbound_line(self, deal_id: int, message_id: str, sent: dict[str, Any],
                       status: str) -> dict[str, Any]:
        return dict(self.deals.add_email(deal_id, {
            "message_id": message_id, "direction": "out", "to": sent.get("address") or "",
            "subject": sent.get("subject") or "", "text": sent.get("text") or "",
            "status": status}, user_id=sent.get("user_id")))

    @every("OUTBOUND_SYNC_SECONDS", 3)
    def sync_outbound(self) -> int:
        """Outbound e-mail still ``queued``: ask notifications how the delivery went and
        mark the feed line ``sent`` or ``failed`` (writing the line if it is missing)."""
        queued = store.claim_queued_outbound(self.db)
        by_client: dict[int, dict[int, dict[str, Any]]] = {}
        for thread in queued:
            if thread.client_id is None:
                continue
            if thread.client_id not in by_client:
                try:
                    by_client[thread.client_id] = {m["id"]: m for m in self.notifications
                                                   .list_client_messages(thread.client_id,
                                                                         limit=200)}
                except CrmError as exc:
                    log.warning("outbound status not known now: %s", exc)
                    break
            sent = by_client[thread.client_id].get(thread.client_message_id or 0)
            if sent is None:
                continue
            status = {"sent": "sent", "failed": "failed", "skipped": "failed"}.get(
                str(sent.get("status")))
            try:
                self._outbound_line(thread.deal_id, thread.message_id, sent, "queued")
                if status is not None:
                    self.deals.set_email_status(thread.deal_id, thread.message_id, status,
                                                sent.get("error"))
                    thread.status = status
            except CrmError as exc:
                log.warning("feed line of %s not updated now: %s", thread.message_id, exc)
        self.db.commit()
        return len(queued)
