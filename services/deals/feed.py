"""Entrypoints of a deal's feed (D8): comments with files, e-mails, leads taken from the
inbox, and the lines other services' events add (receipts, documents, questionnaires)."""
from __future__ import annotations

from typing import Any

from services.deals import domain, store
from services.deals.base import DealsBase
from services.deals.schemas import feed_dict
from services.kit.batch import consumes_batch
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import NotFound


class FeedEntrypoints(DealsBase):
    """The deal's feed (D8): comments, e-mails, leads, receipts, documents, answers."""

    # -------------------------------------------------------------- the feed
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
        return feed_dict(store.feed_once(self.db, deal, "email", ref, cleaned, user_id))

    @rpc
    def add_lead_line(self, deal_id: int, lead: dict[str, Any]) -> dict[str, Any]:
        """An inbox entry taken into the deal (who wrote, what, from which source); once
        per lead and deal."""
        cleaned = domain.validate_lead_line(lead)
        deal = self._deal(deal_id)
        return feed_dict(store.feed_once(self.db, deal, "lead", f"lead:{cleaned['lead_id']}",
                                         cleaned))

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

    # ------------------------------------- lines from other services' events
    @consumes_batch("payments", "payment_received")
    def on_payment_received(self, events: list[Envelope]) -> None:
        """Each receipt's line in its deal's feed (once per receipt), then the stage rule
        each receipt may trigger, in the receipts' order.  A reconciled statement sends
        them by the hundred: a batch is one transaction, its deals read and locked in one
        statement (in id order: two replicas' batches never wait for each other in a
        circle) and its lines written in one."""
        deals = store.lock_deals(self.db, [event.data["deal_id"] for event in events])
        named = []
        for event in events:
            data = event.data
            deal = deals.get(int(data["deal_id"]))
            if deal is None:  # the batch goes one by one, and this receipt is refused
                raise NotFound(f"payment of unknown deal {data['deal_id']}")
            named.append(deal)
        store.add_feed_lines(self.db, [{
            "deal_id": deal.id, "kind": "receipt", "author_id": event.data.get("user_id"),
            "ref": f"receipt:{event.data['receipt_id']}",
            "data": {k: event.data.get(k) for k in ("receipt_id", "payment_id", "amount",
                                                    "currency", "received_on", "source")}}
            for event, deal in zip(events, named, strict=True)])
        for deal in named:
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
