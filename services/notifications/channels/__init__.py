"""Delivery channels of the notifications service: e-mail, Telegram, SMS.

Each channel's ``send(recipient, subject, text, *, idempotency_key)`` returns a
``DeliveryResult`` and never raises for provider trouble; it raises only for
programming or configuration errors (a bad URL, a missing token).
"""
from services.notifications.channels.email import EmailChannel
from services.notifications.channels.result import Channel, DeliveryResult, Outcome
from services.notifications.channels.sms import SmsChannel
from services.notifications.channels.telegram import (
    LinkCode,
    TelegramChannel,
    find_link_codes,
    next_offset,
)

__all__ = ["Channel", "DeliveryResult", "EmailChannel", "LinkCode", "Outcome",
           "SmsChannel", "TelegramChannel", "find_link_codes", "next_offset"]
