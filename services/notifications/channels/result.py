"""What a delivery attempt came to, as a value: channels never raise for provider trouble."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class Outcome(StrEnum):
    OK = "ok"                # the provider took the message (not proof of delivery)
    RETRYABLE = "retryable"  # try again later: outage, throttling, timeout, our config
    PERMANENT = "permanent"  # retrying cannot help: bad recipient, blocked, rejected


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    reason: str = ""
    # Seconds the provider asked us to wait (HTTP Retry-After, Telegram retry_after).
    retry_after: float | None = None
    # The provider's id for the message (SMTP Message-ID, Telegram message_id, SMS id).
    provider_id: str | None = None

    @classmethod
    def accepted(cls, provider_id: str | None = None) -> DeliveryResult:
        return cls(Outcome.OK, provider_id=provider_id)

    @classmethod
    def retry_later(cls, reason: str, retry_after: float | None = None) -> DeliveryResult:
        return cls(Outcome.RETRYABLE, reason, retry_after=retry_after)

    @classmethod
    def rejected(cls, reason: str) -> DeliveryResult:
        return cls(Outcome.PERMANENT, reason)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def retryable(self) -> bool:
        return self.outcome is Outcome.RETRYABLE

    @property
    def permanent(self) -> bool:
        return self.outcome is Outcome.PERMANENT

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "reason": self.reason,
                "retry_after": self.retry_after, "provider_id": self.provider_id}


class Channel(Protocol):
    """What the notifications service needs from a channel."""

    name: str

    def send(self, recipient: str, subject: str, text: str, *,
             idempotency_key: str) -> DeliveryResult: ...
