"""Notifications service: telling people what needs them (MISSION N1–N3).

An event (or ``notify_user``) becomes, for the person it concerns, an in-app notification
and one ``deliveries`` row per external channel they chose, in the same transaction as the
inbox row; the dispatcher sends the rows after commit.  Messages to clients' contacts (N2)
are deliveries too.
"""
from __future__ import annotations

import secrets
from typing import Any

from services.kit import clock
from services.kit.batch import consumes_batch
from services.kit.dependencies import CallLog, Remote, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import Conflict, NotFound
from services.kit.parse import identifier
from services.kit.service import HealthCheck
from services.notifications import domain, models, store
from services.notifications.extensions import Dispatcher, TelegramLinker
from services.notifications.messages import MessagesEntrypoints
from services.notifications.models import Delivery
from services.notifications.schemas import (
    attempt_dict,
    delivery_dict,
    notification_dict,
    profile_dict,
)


class NotificationsService(MessagesEntrypoints, HealthCheck):
    name = "notifications"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    deals = Remote("deals")
    clients = Remote("clients")
    dispatch = Dispatcher()
    telegram = TelegramLinker()

    # -- telling a person (N1) ----------------------------------------------------------
    def _tell(self, user_id: int, kind: str, facts: dict[str, Any], source_key: str,
              deal_id: int | None = None) -> None:
        # Two round trips whatever the channels: the person and their choice for this kind
        # in one read, the in-app notice and every delivery in one write.
        told = self._telling(user_id, kind, facts, source_key, deal_id,
                             store.addressee(self.db, user_id, kind))
        self._save([told])

    def _telling(self, user_id: int, kind: str, facts: dict[str, Any], source_key: str,
                 deal_id: int | None, found: Any) -> domain.Telling:
        return domain.telling(
            kind, facts, user_id=user_id, source_key=source_key, deal_id=deal_id,
            lang=found.lang if found.known else "ru", chosen=found.channels,
            addresses=({"email": found.email, "telegram": found.telegram_chat_id,
                        "sms": found.phone} if found.known else {}),
            configured=self.dispatch.configured, public_url=self.dispatch.public_url,
            now=clock.now())

    def _save(self, tellings: list[domain.Telling]) -> None:
        store.save_notices(self.db, tellings)
        if any(told.pending for told in tellings):
            self.dispatch.queued()

    def _deal(self, deal_id: Any) -> dict[str, Any]:
        """The deal's manager and name: from the local projection, else asked once."""
        key = int(deal_id)
        known = store.known_deal(self.db, key)
        if known is not None:
            return {"id": key, "manager_id": known.manager_id, "name": known.name}
        deal = self.deals.get_deal(key)
        store.remember_deal(self.db, key, deal.get("manager_id"), deal.get("name"),
                            int(deal.get("version") or 0))
        return deal

    @consumes_batch("payments", "payment_received")
    def on_payment_received(self, events: list[Envelope]) -> None:
        """The busiest event, in batches: every deal's manager and the manager's addresses
        in one read, every notice and delivery in one write."""
        found = store.deal_addressees(self.db, {int(e.data["deal_id"]) for e in events},
                                      "payment_received")
        tellings = []
        for event in events:
            data = event.data
            deal_id = int(data["deal_id"])
            row = found[deal_id]
            deal = ({"manager_id": row.manager_id, "name": row.name} if row.deal_known
                    else self._deal(deal_id))
            if deal.get("manager_id") is None:
                continue
            manager_id = int(deal["manager_id"])
            tellings.append(self._telling(
                manager_id, "payment_received", {**data, "deal_name": deal.get("name")},
                f"payment_received:{data['receipt_id']}", deal_id,
                row if row.deal_known else store.addressee(self.db, manager_id,
                                                           "payment_received")))
        self._save(tellings)

    @consumes("payments", "payment_overdue")
    def on_payment_overdue(self, event: Envelope) -> None:
        data = event.data
        manager_id, deal_name = data.get("manager_id"), data.get("deal_name")
        if manager_id is None or deal_name is None:
            deal = self._deal(data["deal_id"])
            manager_id = manager_id or deal.get("manager_id")
            deal_name = deal_name or deal.get("name")
        if manager_id is None:
            return
        self._tell(int(manager_id), "payment_overdue", {**data, "deal_name": deal_name},
                   f"payment_overdue:{data['payment_id']}:{data.get('due_date')}",
                   deal_id=int(data["deal_id"]))

    @consumes("deals", "reminder_due")
    def on_reminder_due(self, event: Envelope) -> None:
        data = event.data
        if data.get("assignee_id") is None:
            return
        self._tell(int(data["assignee_id"]), "reminder_due", dict(data),
                   f"reminder_due:{data['reminder_id']}:{data.get('due_at')}",
                   deal_id=data.get("deal_id"))

    def _document_news(self, event: Envelope, kind: str) -> None:
        data = event.data
        if data.get("manager_id") is None:
            return
        self._tell(int(data["manager_id"]), kind, dict(data), f"{kind}:{event.event_id}",
                   deal_id=data.get("deal_id"))

    @consumes("documents", "document_viewed")
    def on_document_viewed(self, event: Envelope) -> None:
        self._document_news(event, "document_viewed")

    @consumes("documents", "document_approved")
    def on_document_approved(self, event: Envelope) -> None:
        self._document_news(event, "document_approved")

    @consumes("documents", "document_declined")
    def on_document_declined(self, event: Envelope) -> None:
        self._document_news(event, "document_declined")

    @consumes("documents", "document_signed")
    def on_document_signed(self, event: Envelope) -> None:
        self._document_news(event, "document_signed")

    @consumes("documents", "questionnaire_filled")
    def on_questionnaire_filled(self, event: Envelope) -> None:
        self._document_news(event, "questionnaire_filled")

    @consumes_batch("intake", "lead_received")
    def on_lead_received(self, events: list[Envelope]) -> None:
        """N1 "new lead": the manager each lead was assigned to, at once.  In batches (the
        kit's consumes_batch): a burst of website submissions is one transaction, each
        manager's choice read once, every notice and delivery in one write."""
        found: dict[int, Any] = {}
        tellings = []
        for event in events:
            data = event.data
            if data.get("assignee_id") is None:
                continue
            user_id = int(data["assignee_id"])
            if user_id not in found:
                found[user_id] = store.addressee(self.db, user_id, "new_lead")
            tellings.append(self._telling(
                user_id, "new_lead", {**data, "link": f"/leads/{data['lead_id']}"},
                f"new_lead:{data['lead_id']}:{data['assignee_id']}", None, found[user_id]))
        if tellings:
            self._save(tellings)

    @consumes("intake", "lead_overdue")
    def on_lead_overdue(self, event: Envelope) -> None:
        """A lead nobody took in time: each head named by intake."""
        data = event.data
        for head in data.get("head_ids") or []:
            self._tell(int(head), "lead_overdue", {**data, "link": f"/leads/{data['lead_id']}"},
                       f"lead_overdue:{data['lead_id']}:{head}")

    @consumes("intake", "mail_flood")
    def on_mail_flood(self, event: Envelope) -> None:
        """More mail from one sender than a person writes: the administrators."""
        data = event.data
        for admin in data.get("admin_ids") or []:
            self._tell(int(admin), "mail_flood", {**data, "link": "/leads"},
                       f"mail_flood:{data['sender']}:{data['window']}:{admin}")

    def _assigned(self, event: Envelope, manager_id: Any, deal_name: Any) -> None:
        data = event.data
        actor = data.get("user_id", data.get("created_by"))
        if manager_id is None or (actor is not None and int(actor) == int(manager_id)):
            return  # nobody to tell, or they did it themselves
        if deal_name is None:
            deal_name = self._deal(data["deal_id"]).get("name")
        self._tell(int(manager_id), "deal_assigned",
                   {"deal_id": data["deal_id"], "deal_name": deal_name},
                   f"deal_assigned:{data['deal_id']}:{event.event_id}",
                   deal_id=int(data["deal_id"]))

    @consumes("deals", "deal_created")
    def on_deal_created(self, event: Envelope) -> None:
        data = event.data
        store.remember_deal(self.db, int(data["deal_id"]), data.get("manager_id"),
                            data.get("name"), int(data.get("version") or 1))
        self._assigned(event, data.get("manager_id"), data.get("name"))

    @consumes("deals", "deal_updated")
    def on_deal_updated(self, event: Envelope) -> None:
        data = event.data
        if "manager_id" in data:
            store.remember_deal(self.db, int(data["deal_id"]), data.get("manager_id"),
                                data.get("name"), int(data.get("version") or 0))
        old, new = domain.manager_change(data)
        if new is not None and new != old:
            self._assigned(event, new, data.get("name"))

    @rpc
    def notify_user(self, user_id: int, kind: str, facts: dict[str, Any],
                    key: str) -> dict[str, Any]:
        """Tell a user about something that has no event of its own yet — the hook for
        questionnaires filled and documents signed (G2/G3).  ``key`` identifies the fact:
        the same key tells nobody twice."""
        uid = identifier(user_id, "user_id")
        source_key = domain.notify_key(kind, facts, key)
        deal_id = facts.get("deal_id")
        self._tell(uid, kind, facts, source_key, deal_id=int(deal_id) if deal_id else None)
        return {"queued": True}

    # -- in the app ---------------------------------------------------------------------
    @rpc
    def list_for_user(self, user_id: int, unread_only: bool = False,
                      limit: int = 50, deal_id: int | None = None) -> dict[str, Any]:
        items = store.notifications_of(self.db, int(user_id), unread_only,
                                       max(1, min(int(limit), 200)),
                                       int(deal_id) if deal_id is not None else None)
        return {"unread": store.unread(self.db, int(user_id)),
                "items": [notification_dict(n) for n in items]}

    @rpc
    def unread_count(self, user_id: int) -> int:
        return store.unread(self.db, int(user_id))

    @rpc
    def open_notification(self, user_id: int, notification_id: int) -> dict[str, Any]:
        """The user's notification, marked read (following its link reads it)."""
        item = store.notification_to_open(self.db, identifier(user_id, "user_id"),
                                          identifier(notification_id, "notification_id"))
        if item is None:
            raise NotFound(f"notification {notification_id} not found",
                           entity="notification", id=notification_id)
        if item.read_at is None:
            item.read_at = clock.now()
        return notification_dict(item)

    @rpc
    def mark_read(self, user_id: int, ids: list[int] | None = None) -> int:
        return store.mark_read(self.db, int(user_id),
                               domain.notification_ids(ids) if ids is not None else None)

    # -- the profile: addresses, choices, Telegram -------------------------------------
    def _profile(self, user_id: int) -> dict[str, Any]:
        return profile_dict(user_id, store.known_recipient(self.db, user_id),
                            store.preferences(self.db, user_id), self.telegram.bot_name,
                            self.dispatch.configured, clock.now())

    @rpc
    def get_profile(self, user_id: int) -> dict[str, Any]:
        return self._profile(identifier(user_id, "user_id"))

    @rpc
    def set_recipient(self, user_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Set how to reach a user: any of ``email``, ``phone``, ``name``, ``lang``
        (given keys change, empty clears)."""
        uid = identifier(user_id, "user_id")
        self._set_recipient(uid, data)
        return self._profile(uid)

    @rpc
    def set_preferences(self, user_id: int, preferences: dict[str, list[str]]) -> dict[str, Any]:
        """``{kind: [channels]}`` for the kinds given; other kinds keep their choice."""
        uid = identifier(user_id, "user_id")
        self._set_preferences(uid, preferences)
        return self._profile(uid)

    @rpc
    def save_profile(self, user_id: int, recipient: dict[str, Any] | None = None,
                     preferences: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """Contact details and preferences together, in one transaction: both or neither."""
        uid = identifier(user_id, "user_id")
        if recipient is not None:
            self._set_recipient(uid, recipient)
        if preferences is not None:
            self._set_preferences(uid, preferences)
        return self._profile(uid)

    def _set_recipient(self, uid: int, data: dict[str, Any]) -> None:
        changes = domain.recipient_changes(data)
        recipient = store.recipient(self.db, uid, lock=True)
        for key, value in changes.items():
            setattr(recipient, key, value if key != "lang" else value or "ru")
        recipient.updated_at = clock.now()
        self.db.flush()

    def _set_preferences(self, uid: int, preferences: dict[str, list[str]]) -> None:
        for kind, channels in domain.preferences_from(preferences).items():
            store.set_preference(self.db, uid, kind, channels)

    @rpc
    def telegram_link_code(self, user_id: int) -> dict[str, Any]:
        """A fresh one-time code for the user to send to the bot (valid for minutes)."""
        uid = identifier(user_id, "user_id")
        if not self.telegram.enabled:
            # a fact of this installation, not an outage: retrying will not help (409)
            raise Conflict("Telegram is not configured (TELEGRAM_BOT_TOKEN)",
                           channel="telegram", reason="not_configured")
        recipient = store.recipient(self.db, uid, lock=True)
        recipient.telegram_code = secrets.token_hex(5)
        recipient.telegram_code_expires_at = self.telegram.code_expiry()
        recipient.updated_at = clock.now()
        self.db.flush()
        return self._profile(uid)["telegram"]

    @rpc
    def unlink_telegram(self, user_id: int) -> dict[str, Any]:
        uid = identifier(user_id, "user_id")
        recipient = store.recipient(self.db, uid, lock=True)
        recipient.telegram_chat_id = recipient.telegram_code = None
        recipient.telegram_code_expires_at = None
        self.db.flush()
        return self._profile(uid)

    # -- the delivery log (N3) ----------------------------------------------------------
    @rpc
    def list_deliveries(self, status: str | None = None, channel: str | None = None,
                        user_id: int | None = None, limit: int = 100,
                        offset: int = 0) -> dict[str, Any]:
        """The delivery log, newest first, with counts per status (for administrators)."""
        rows = store.deliveries(self.db, status, channel,
                                int(user_id) if user_id is not None else None,
                                max(1, min(int(limit), 500)), max(0, int(offset)))
        return {"items": [delivery_dict(d) for d in rows],
                "counts": store.status_counts(self.db)}

    @rpc
    def get_delivery(self, delivery_id: int) -> dict[str, Any]:
        delivery = store.delivery(self.db, identifier(delivery_id, "delivery_id"))
        if delivery is None:
            raise NotFound(f"delivery {delivery_id} not found", entity="delivery",
                           id=delivery_id)
        return {**delivery_dict(delivery), "body": delivery.body,
                "log": [attempt_dict(a) for a in store.attempts(self.db, delivery.id)]}

    @rpc
    def retry_delivery(self, delivery_id: int, user_id: int | None = None) -> dict[str, Any]:
        """An administrator sends a failed (or skipped) delivery again: a new round of
        tries.  Anything else is a conflict: it is sent, or on its way."""
        delivery = store.delivery(self.db, identifier(delivery_id, "delivery_id"), lock=True)
        if delivery is None:
            raise NotFound(f"delivery {delivery_id} not found", entity="delivery",
                           id=delivery_id)
        if delivery.status not in ("failed", "skipped"):
            raise Conflict(f"delivery {delivery.id} is {delivery.status}: only failed or "
                           f"skipped ones can be sent again", entity="delivery",
                           id=delivery.id, status=delivery.status)
        if delivery.channel in domain.EXTERNAL_CHANNELS:
            reason = self._readdress(delivery)
            if reason is not None:
                raise Conflict(f"delivery {delivery.id} still cannot be sent: {reason}",
                               entity="delivery", id=delivery.id, status=delivery.status)
        store.send_again(self.db, delivery, user_id)
        self.dispatch.queued()
        return delivery_dict(delivery)

    def _readdress(self, delivery: Delivery) -> str | None:
        """Before a delivery to a user is sent again, take their address from the profile
        as it is now (it may have been missing or wrong).  Returns why it still cannot
        go, or None."""
        current = (store.address_of(self.db, delivery.user_id, delivery.channel)
                   if delivery.user_id else None)
        address = current or delivery.address
        planned = domain.plan([delivery.channel], {delivery.channel: address},
                              self.dispatch.configured)[0]
        delivery.address = planned.address
        return planned.skip_reason

    @rpc
    def delivery_stats(self) -> dict[str, int]:
        return store.status_counts(self.db)
