"""Notifications service: telling people what needs them (MISSION N1–N3).

An event (or ``notify_user``) becomes, for the person it concerns, an in-app notification
and one ``deliveries`` row per external channel they chose, in the same transaction as the
inbox row; the dispatcher sends the rows after commit.  Messages to clients' contacts (N2)
are deliveries too.
"""
from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from services.kit import clock
from services.kit.dependencies import CallLog, Remote, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import Conflict, NotFound, ServiceUnavailable, ValidationError
from services.kit.parse import identifier
from services.kit.service import HealthCheck
from services.notifications import domain, models
from services.notifications.extensions import Dispatcher, TelegramLinker
from services.notifications.models import (
    ClientMessage,
    DealManager,
    Delivery,
    DeliveryAttempt,
    Notification,
    Preference,
    Recipient,
)


def notification_dict(n: Notification) -> dict[str, Any]:
    return {"id": n.id, "user_id": n.user_id, "kind": n.kind, "title": n.title, "body": n.body,
            "link": n.link, "deal_id": n.deal_id, "created_at": n.created_at,
            "read_at": n.read_at}


def delivery_dict(d: Delivery) -> dict[str, Any]:
    return {"id": d.id, "source_key": d.source_key, "kind": d.kind,
            "recipient_key": d.recipient_key, "user_id": d.user_id, "channel": d.channel,
            "address": d.address, "subject": d.subject, "status": d.status,
            "attempts": d.attempts, "next_attempt_at": d.next_attempt_at,
            "last_error": d.last_error, "provider_id": d.provider_id,
            "created_at": d.created_at, "sent_at": d.sent_at, "updated_at": d.updated_at,
            "client_message_id": d.client_message_id}


def message_dict(m: ClientMessage, d: Delivery | None) -> dict[str, Any]:
    return {"id": m.id, "client_id": m.client_id, "contact_id": m.contact_id,
            "contact_name": m.contact_name, "user_id": m.user_id, "channel": m.channel,
            "address": m.address, "subject": m.subject, "text": m.body,
            "created_at": m.created_at, "status": d.status if d else "pending",
            "sent_at": d.sent_at if d else None, "error": d.last_error if d else None,
            "delivery_id": d.id if d else None}


# A person's addresses and their channels for one kind of notice; a row even for a user
# who set up neither (known = false, channels NULL: the defaults).
_ADDRESSEE = text("""
SELECT r.user_id IS NOT NULL AS known, r.lang, r.email, r.telegram_chat_id, r.phone,
    p.channels
FROM (SELECT CAST(:user_id AS integer) AS user_id) u
LEFT JOIN recipients r ON r.user_id = u.user_id
LEFT JOIN preferences p ON p.user_id = u.user_id AND p.kind = :kind""")


# The same for the manager of a deal, with the deal from the local projection (deal_known
# false: not projected yet, ask the deals service).
_DEAL_ADDRESSEE = text("""
SELECT d.deal_id IS NOT NULL AS deal_known, d.manager_id, d.name,
    r.user_id IS NOT NULL AS known, r.lang, r.email, r.telegram_chat_id, r.phone, p.channels
FROM (SELECT CAST(:deal_id AS bigint) AS deal_id) x
LEFT JOIN deal_managers d ON d.deal_id = x.deal_id
LEFT JOIN recipients r ON r.user_id = d.manager_id
LEFT JOIN preferences p ON p.user_id = d.manager_id AND p.kind = :kind""")


def _user_id(value: Any, field: str = "user_id") -> int:
    """A positive integer id, or a ValidationError naming ``field``."""
    return identifier(value, field)


class NotificationsService(HealthCheck):
    name = "notifications"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    deals = Remote("deals")
    clients = Remote("clients")
    dispatch = Dispatcher()
    telegram = TelegramLinker()

    # -- telling a person (N1) ----------------------------------------------------------
    def _tell(self, user_id: int, kind: str, facts: dict[str, Any], source_key: str,
              deal_id: int | None = None, addressee: Any = None) -> None:
        # Two round trips whatever the channels: the person and their choice for this kind
        # in one read (or none: ``addressee``, read with the deal), the in-app notice and
        # every delivery in one write.  An event's handling is a handful of round trips,
        # and they are what bounds the throughput.
        found = addressee if addressee is not None else self.db.execute(
            _ADDRESSEE, {"user_id": user_id, "kind": kind}).one()
        lang = found.lang if found.known else "ru"
        channels = domain.channels_for(kind, found.channels)
        item = domain.notice(kind, facts, lang)
        now = clock.now()
        recipient_key = f"user:{user_id}"
        rows: list[dict[str, Any]] = []
        told = None
        if "app" in channels:
            told = insert(Notification).values(
                user_id=user_id, kind=kind, title=item.title, body=item.body, link=item.link,
                deal_id=deal_id, dedup_key=source_key[:200]).on_conflict_do_nothing()
            rows.append({"channel": "app", "address": None, "subject": item.title,
                         "body": item.body, "status": "sent", "sent_at": now})
        addresses = ({"email": found.email, "telegram": found.telegram_chat_id,
                      "sms": found.phone} if found.known else {})
        for planned in domain.plan(channels, addresses, self.dispatch.configured):
            subject, body = domain.render(planned.channel, item, self.dispatch.public_url, lang)
            rows.append({"channel": planned.channel, "address": planned.address,
                         "subject": subject, "body": body,
                         "status": "skipped" if planned.skip_reason else "pending",
                         "last_error": planned.skip_reason,
                         "next_attempt_at": None if planned.skip_reason else now})
        if rows:
            common = {"source_key": source_key[:200], "kind": kind,
                      "recipient_key": recipient_key, "user_id": user_id}
            fields = ("channel", "address", "subject", "body", "status", "sent_at",
                      "last_error", "next_attempt_at")
            deliveries = insert(Delivery).values(
                [{**common, **{f: row.get(f) for f in fields}} for row in rows]
            ).on_conflict_do_nothing()
            # the notice rides along as a data-modifying CTE: PostgreSQL runs it even
            # though the delivery insert does not read it
            self.db.execute(deliveries if told is None else
                            deliveries.add_cte(told.cte("told")))
        if any(r["status"] == "pending" for r in rows):
            self.dispatch.queued()

    def _deal(self, deal_id: Any) -> dict[str, Any]:
        """The deal's manager and name: from the local projection, else asked once."""
        key = int(deal_id)
        known = self.db.get(DealManager, key)
        if known is not None:
            return {"id": key, "manager_id": known.manager_id, "name": known.name}
        deal = self.deals.get_deal(key)
        self._remember_deal(key, deal.get("manager_id"), deal.get("name"),
                            int(deal.get("version") or 0))
        return deal

    def _remember_deal(self, deal_id: int, manager_id: Any, name: Any, version: int) -> None:
        values = {"manager_id": int(manager_id) if manager_id is not None else None,
                  "name": str(name or "")[:500], "version": version,
                  "updated_at": clock.now()}
        self.db.execute(insert(DealManager).values(deal_id=deal_id, **values)
                        .on_conflict_do_update(index_elements=["deal_id"], set_=values,
                                               where=DealManager.version <= version))

    @consumes("payments", "payment_received")
    def on_payment_received(self, event: Envelope) -> None:
        data = event.data
        # the busiest event: its deal, manager and the manager's addresses in one read
        row = self.db.execute(_DEAL_ADDRESSEE, {"deal_id": int(data["deal_id"]),
                                                "kind": "payment_received"}).one()
        deal = ({"manager_id": row.manager_id, "name": row.name} if row.deal_known
                else self._deal(data["deal_id"]))
        if deal.get("manager_id") is None:
            return
        self._tell(int(deal["manager_id"]), "payment_received",
                   {**data, "deal_name": deal.get("name")},
                   f"payment_received:{data['receipt_id']}", deal_id=int(data["deal_id"]),
                   addressee=row if row.deal_known else None)

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

    @consumes("intake", "lead_received")
    def on_lead_received(self, event: Envelope) -> None:
        """N1 "new lead": the manager the lead was assigned to, at once."""
        data = event.data
        if data.get("assignee_id") is None:
            return
        self._tell(int(data["assignee_id"]), "new_lead",
                   {**data, "link": f"/leads/{data['lead_id']}"},
                   f"new_lead:{data['lead_id']}:{data['assignee_id']}")

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
        self._remember_deal(int(data["deal_id"]), data.get("manager_id"), data.get("name"),
                            int(data.get("version") or 1))
        self._assigned(event, data.get("manager_id"), data.get("name"))

    @consumes("deals", "deal_updated")
    def on_deal_updated(self, event: Envelope) -> None:
        data = event.data
        if "manager_id" in data:
            self._remember_deal(int(data["deal_id"]), data.get("manager_id"), data.get("name"),
                                int(data.get("version") or 0))
        old, new = domain.manager_change(data)
        if new is not None and new != old:
            self._assigned(event, new, data.get("name"))

    @rpc
    def notify_user(self, user_id: int, kind: str, facts: dict[str, Any],
                    key: str) -> dict[str, Any]:
        """Tell a user about something that has no event of its own yet — the hook for
        questionnaires filled and documents signed (G2/G3).  ``key`` identifies the fact:
        the same key tells nobody twice."""
        uid = _user_id(user_id)
        if kind not in domain.KINDS:
            raise ValidationError(f"«{kind}» — такого варианта нет.",
                                  field="kind", key="choice.invalid",
                                  params={"value": str(kind),
                                          "options": ", ".join(domain.KINDS)})
        if not isinstance(facts, dict):
            raise ValidationError("Нужен объект JSON.", field="facts", key="object.invalid")
        if not isinstance(key, str) or not key.strip():
            raise ValidationError("Обязательное поле.", field="key", key="required")
        deal_id = facts.get("deal_id")
        self._tell(uid, kind, facts, f"{kind}:{key.strip()}",
                   deal_id=int(deal_id) if deal_id else None)
        return {"queued": True}

    # -- in the app ---------------------------------------------------------------------
    @rpc
    def list_for_user(self, user_id: int, unread_only: bool = False,
                      limit: int = 50, deal_id: int | None = None) -> dict[str, Any]:
        stmt = select(Notification).where(Notification.user_id == int(user_id))
        if deal_id is not None:
            stmt = stmt.where(Notification.deal_id == int(deal_id))
        if unread_only:
            stmt = stmt.where(Notification.read_at.is_(None))
        items = self.db.scalars(stmt.order_by(Notification.id.desc())
                                .limit(max(1, min(int(limit), 200))))
        return {"unread": self._unread(int(user_id)),
                "items": [notification_dict(n) for n in items]}

    def _unread(self, user_id: int) -> int:
        return int(self.db.scalar(select(func.count()).where(
            Notification.user_id == user_id, Notification.read_at.is_(None))) or 0)

    @rpc
    def unread_count(self, user_id: int) -> int:
        return self._unread(int(user_id))

    @rpc
    def open_notification(self, user_id: int, notification_id: int) -> dict[str, Any]:
        """The user's notification, marked read (following its link reads it)."""
        item = self.db.scalars(select(Notification).where(
            Notification.id == _user_id(notification_id, "notification_id"),
            Notification.user_id == _user_id(user_id)).with_for_update()).first()
        if item is None:
            raise NotFound(f"notification {notification_id} not found",
                           entity="notification", id=notification_id)
        if item.read_at is None:
            item.read_at = clock.now()
        return notification_dict(item)

    @rpc
    def mark_read(self, user_id: int, ids: list[int] | None = None) -> int:
        stmt = (update(Notification)
                .where(Notification.user_id == int(user_id), Notification.read_at.is_(None)))
        if ids is not None:
            if not isinstance(ids, list):
                raise ValidationError("Нужен список.", field="ids", key="list.invalid")
            try:
                wanted = [int(i) for i in ids]
            except (TypeError, ValueError):
                raise ValidationError("Нужен список номеров уведомлений.", field="ids",
                                      key="list.invalid") from None
            stmt = stmt.where(Notification.id.in_(wanted))
        return self.db.execute(stmt.values(read_at=clock.now())).rowcount

    # -- the profile: addresses, choices, Telegram -------------------------------------
    def _recipient(self, user_id: int, lock: bool = False) -> Recipient:
        stmt = select(Recipient).where(Recipient.user_id == user_id)
        recipient = self.db.scalars(stmt.with_for_update() if lock else stmt).first()
        if recipient is None:
            self.db.execute(insert(Recipient).values(user_id=user_id).on_conflict_do_nothing())
            recipient = self.db.scalars(stmt.with_for_update()).one()
        return recipient

    def _profile(self, user_id: int) -> dict[str, Any]:
        recipient = self.db.get(Recipient, user_id)
        chosen = {p.kind: list(p.channels) for p in self.db.scalars(
            select(Preference).where(Preference.user_id == user_id))}
        code = None
        if (recipient is not None and recipient.telegram_code
                and recipient.telegram_code_expires_at
                and recipient.telegram_code_expires_at > clock.now()):
            code = recipient.telegram_code
        bot = self.telegram.bot_name
        return {
            "user_id": user_id,
            "name": recipient.name if recipient else None,
            "email": recipient.email if recipient else None,
            "phone": recipient.phone if recipient else None,
            "lang": recipient.lang if recipient else "ru",
            "telegram": {"linked": bool(recipient and recipient.telegram_chat_id),
                         "chat_id": recipient.telegram_chat_id if recipient else None,
                         "code": code, "bot_name": bot or None,
                         "link": f"https://t.me/{bot}?start={code}" if bot and code else None,
                         "code_expires_at": recipient.telegram_code_expires_at
                         if code and recipient else None},
            "preferences": {kind: chosen.get(kind, list(domain.channels_for(kind, None)))
                            for kind in domain.KINDS},
            "kinds": list(domain.KINDS), "channels": list(domain.CHANNELS),
            "configured": {"app": True, **self.dispatch.configured},
        }

    @rpc
    def get_profile(self, user_id: int) -> dict[str, Any]:
        return self._profile(_user_id(user_id))

    @rpc
    def set_recipient(self, user_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Set how to reach a user: any of ``email``, ``phone``, ``name``, ``lang``
        (given keys change, empty clears)."""
        uid = _user_id(user_id)
        self._set_recipient(uid, data)
        return self._profile(uid)

    @rpc
    def set_preferences(self, user_id: int, preferences: dict[str, list[str]]) -> dict[str, Any]:
        """``{kind: [channels]}`` for the kinds given; other kinds keep their choice."""
        uid = _user_id(user_id)
        self._set_preferences(uid, preferences)
        return self._profile(uid)

    @rpc
    def save_profile(self, user_id: int, recipient: dict[str, Any] | None = None,
                     preferences: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """Contact details and preferences together, in one transaction: both or neither."""
        uid = _user_id(user_id)
        if recipient is not None:
            self._set_recipient(uid, recipient)
        if preferences is not None:
            self._set_preferences(uid, preferences)
        return self._profile(uid)

    def _set_recipient(self, uid: int, data: dict[str, Any]) -> None:
        changes = domain.recipient_changes(data)
        recipient = self._recipient(uid, lock=True)
        for key, value in changes.items():
            setattr(recipient, key, value if key != "lang" else value or "ru")
        recipient.updated_at = clock.now()
        self.db.flush()

    def _set_preferences(self, uid: int, preferences: dict[str, list[str]]) -> None:
        for kind, channels in domain.preferences_from(preferences).items():
            self.db.execute(insert(Preference).values(user_id=uid, kind=kind, channels=channels)
                            .on_conflict_do_update(index_elements=["user_id", "kind"],
                                                   set_={"channels": channels}))

    @rpc
    def telegram_link_code(self, user_id: int) -> dict[str, Any]:
        """A fresh one-time code for the user to send to the bot (valid for minutes)."""
        uid = _user_id(user_id)
        if not self.telegram.enabled:
            # a fact of this installation, not an outage: retrying will not help (409)
            raise Conflict("Telegram is not configured (TELEGRAM_BOT_TOKEN)",
                           channel="telegram", reason="not_configured")
        recipient = self._recipient(uid, lock=True)
        recipient.telegram_code = secrets.token_hex(5)
        recipient.telegram_code_expires_at = self.telegram.code_expiry()
        recipient.updated_at = clock.now()
        self.db.flush()
        return self._profile(uid)["telegram"]

    @rpc
    def unlink_telegram(self, user_id: int) -> dict[str, Any]:
        uid = _user_id(user_id)
        recipient = self._recipient(uid, lock=True)
        recipient.telegram_chat_id = recipient.telegram_code = None
        recipient.telegram_code_expires_at = None
        self.db.flush()
        return self._profile(uid)

    # -- messages to clients (N2) ------------------------------------------------------
    @rpc
    def send_to_contact(self, user_id: int, client_id: int, contact_id: int, channel: str,
                        address: str, subject: str, text: str,
                        request_id: str | None = None) -> dict[str, Any]:
        """Send a contact of a client a message by e-mail, Telegram or SMS; it is logged
        and listed in the client's messages.  The same ``request_id`` sends once."""
        uid = _user_id(user_id)
        cid = _user_id(client_id, "client_id")
        pid = _user_id(contact_id, "contact_id")
        message = domain.client_message(channel, address, subject, text)
        if request_id is not None and (not isinstance(request_id, str) or len(request_id) > 64):
            raise ValidationError("Не больше 64 символов.", field="request_id",
                                  key="text.too_long", params={"max": 64})
        if request_id:
            earlier = self.db.scalars(select(ClientMessage).where(
                ClientMessage.client_id == cid, ClientMessage.request_id == request_id)).first()
            if earlier is not None:
                return self._message(earlier)
        client = self.clients.get_client(cid)
        contact = next((c for c in client.get("contacts", []) if c["id"] == pid), None)
        if contact is None:
            raise NotFound(f"contact {pid} is not a contact of client {cid}",
                           entity="contact", id=pid, field="contact_id")
        if not self.dispatch.configured.get(message.channel):
            raise ServiceUnavailable(f"{message.channel}: the channel is not configured",
                                     channel=message.channel, field="channel")
        row = self.db.execute(insert(ClientMessage).values(
            client_id=cid, contact_id=pid, contact_name=contact.get("name"), user_id=uid,
            channel=message.channel, address=message.address, subject=message.subject,
            body=message.text, request_id=request_id or None)
            .on_conflict_do_nothing().returning(ClientMessage.id)).first()
        if row is None:  # the same request, concurrently
            earlier = self.db.scalars(select(ClientMessage).where(
                ClientMessage.client_id == cid, ClientMessage.request_id == request_id)).one()
            return self._message(earlier)
        saved = self.db.get(ClientMessage, row[0])
        subject_line = message.subject or ("Сообщение" if message.channel == "email" else "")
        self.db.add(Delivery(
            source_key=f"client_message:{saved.id}", kind="client_message",
            recipient_key=f"contact:{pid}", user_id=None, client_message_id=saved.id,
            channel=message.channel, address=message.address, subject=subject_line,
            body=message.text, status="pending", next_attempt_at=clock.now()))
        self.db.flush()
        self.dispatch.queued()
        result = self._message(saved)
        self.db.emit("client_message_created", result)
        return result

    def _message(self, message: ClientMessage) -> dict[str, Any]:
        delivery = self.db.scalars(select(Delivery).where(
            Delivery.client_message_id == message.id)).first()
        result = message_dict(message, delivery)
        email = self.dispatch.channels.get("email")
        if message.channel == "email" and email is not None:
            # Known before sending, so the sender can thread the reply back (intake).
            # only the e-mail channel names its messages before sending them
            result["message_id"] = email.message_id_for(  # type: ignore[attr-defined]
                domain.idempotency_key(
                f"client_message:{message.id}", f"contact:{message.contact_id}", "email"))
        return result

    @rpc
    def list_client_messages(self, client_id: int, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.execute(
            select(ClientMessage, Delivery)
            .outerjoin(Delivery, Delivery.client_message_id == ClientMessage.id)
            .where(ClientMessage.client_id == int(client_id))
            .order_by(ClientMessage.id.desc()).limit(max(1, min(int(limit), 200)))).all()
        return [message_dict(m, d) for m, d in rows]

    # -- the delivery log (N3) ----------------------------------------------------------
    @rpc
    def list_deliveries(self, status: str | None = None, channel: str | None = None,
                        user_id: int | None = None, limit: int = 100,
                        offset: int = 0) -> dict[str, Any]:
        """The delivery log, newest first, with counts per status (for administrators)."""
        stmt = select(Delivery)
        if status:
            stmt = stmt.where(Delivery.status == status)
        if channel:
            stmt = stmt.where(Delivery.channel == channel)
        if user_id is not None:
            stmt = stmt.where(Delivery.user_id == int(user_id))
        rows = self.db.scalars(stmt.order_by(Delivery.id.desc())
                               .limit(max(1, min(int(limit), 500))).offset(max(0, int(offset))))
        counts = dict(self.db.execute(select(Delivery.status, func.count())
                                      .group_by(Delivery.status)).all())
        return {"items": [delivery_dict(d) for d in rows],
                "counts": {k: int(v) for k, v in counts.items()}}

    @rpc
    def get_delivery(self, delivery_id: int) -> dict[str, Any]:
        delivery = self.db.get(Delivery, _user_id(delivery_id, "delivery_id"))
        if delivery is None:
            raise NotFound(f"delivery {delivery_id} not found", entity="delivery",
                           id=delivery_id)
        attempts = self.db.scalars(select(DeliveryAttempt).where(
            DeliveryAttempt.delivery_id == delivery.id).order_by(DeliveryAttempt.id))
        return {**delivery_dict(delivery), "body": delivery.body, "log": [
            {"attempt": a.attempt, "started_at": a.started_at, "finished_at": a.finished_at,
             "outcome": a.outcome, "reason": a.reason, "by_user_id": a.by_user_id}
            for a in attempts]}

    @rpc
    def retry_delivery(self, delivery_id: int, user_id: int | None = None) -> dict[str, Any]:
        """An administrator sends a failed (or skipped) delivery again: a new round of
        tries.  Anything else is a conflict: it is sent, or on its way."""
        delivery = self.db.scalars(select(Delivery).where(
            Delivery.id == _user_id(delivery_id, "delivery_id")).with_for_update()).first()
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
        now = clock.now()
        self.db.add(DeliveryAttempt(delivery_id=delivery.id, attempt=delivery.attempts,
                                    started_at=now, finished_at=now, outcome="manual",
                                    reason="sent again by hand", by_user_id=user_id))
        delivery.status, delivery.attempts = "pending", 0
        delivery.next_attempt_at, delivery.updated_at = now, now
        delivery.last_error = None
        self.dispatch.queued()
        self.db.flush()
        return delivery_dict(delivery)

    def _readdress(self, delivery: Delivery) -> str | None:
        """Before a delivery to a user is sent again, take their address from the profile
        as it is now (it may have been missing or wrong).  Returns why it still cannot
        go, or None."""
        recipient = self.db.get(Recipient, delivery.user_id) if delivery.user_id else None
        current = ({"email": recipient.email, "sms": recipient.phone,
                    "telegram": recipient.telegram_chat_id}.get(delivery.channel)
                   if recipient is not None else None)
        address = current or delivery.address
        planned = domain.plan([delivery.channel], {delivery.channel: address},
                              self.dispatch.configured)[0]
        delivery.address = planned.address
        return planned.skip_reason

    @rpc
    def delivery_stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.db.execute(
            select(Delivery.status, func.count()).group_by(Delivery.status)).all()}
