"""Notification channels (services/notifications/README.md)."""
from __future__ import annotations

CHANNELS = ("app", "email", "telegram", "sms")
MESSAGE_CHANNELS = ("email", "telegram", "sms")  # to clients' contacts (N2)
