"""The contract of notifications: notices, deliveries, messages to clients and a person's
profile as RPC results and event payloads carry them."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from services.notifications import domain
from services.notifications.models import (
    ClientMessage,
    Delivery,
    DeliveryAttempt,
    Notification,
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


def attempt_dict(a: DeliveryAttempt) -> dict[str, Any]:
    return {"attempt": a.attempt, "started_at": a.started_at, "finished_at": a.finished_at,
            "outcome": a.outcome, "reason": a.reason, "by_user_id": a.by_user_id}


def message_dict(m: ClientMessage, d: Delivery | None) -> dict[str, Any]:
    return {"id": m.id, "client_id": m.client_id, "contact_id": m.contact_id,
            "contact_name": m.contact_name, "user_id": m.user_id, "channel": m.channel,
            "address": m.address, "subject": m.subject, "text": m.body,
            "created_at": m.created_at, "status": d.status if d else "pending",
            "sent_at": d.sent_at if d else None, "error": d.last_error if d else None,
            "delivery_id": d.id if d else None}


def profile_dict(user_id: int, recipient: Recipient | None, chosen: dict[str, list[str]],
                 bot: str, configured: dict[str, bool], now: datetime) -> dict[str, Any]:
    """How a person is reached and what they chose (the profile page); the Telegram code
    only while it is valid."""
    code = None
    if (recipient is not None and recipient.telegram_code
            and recipient.telegram_code_expires_at
            and recipient.telegram_code_expires_at > now):
        code = recipient.telegram_code
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
        "configured": {"app": True, **configured},
    }
