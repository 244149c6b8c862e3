"""The one queue consumer every kit entrypoint and RPC proxy reads the broker through."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import amqp.exceptions
from nameko.messaging import QueueConsumer

log = logging.getLogger("crm.events")


class SturdyQueueConsumer(QueueConsumer):
    """nameko's queue consumer, whose ack and requeue survive the broker closing the
    connection under them.

    nameko forgives only py-amqp's own ``ConnectionError`` there; a socket the broker has
    just closed (a restart landing between a handler's commit and its ack) raises the
    operating system's ``BrokenPipeError`` or ``ConnectionResetError``, which escaped into
    the worker and killed the whole container, and with it the service's process.
    The delivery is not lost by forgiving it: the broker takes back what was not acked and
    delivers it again, and the inbox (or the RPC's idempotency key) makes it count once."""

    def ack_message(self, message: Any) -> None:
        self._settle(message, message.ack, "ack")

    def requeue_message(self, message: Any) -> None:
        self._settle(message, message.requeue, "requeue")

    @staticmethod
    def _settle(message: Any, settle: Callable[[], None], what: str) -> None:
        if not message.channel.connection:
            return  # the channel went with its connection: the broker took the message back
        try:
            settle()
        except (OSError, amqp.exceptions.AMQPError) as exc:
            log.warning("could not %s delivery %s (%s: %s); the broker will deliver it "
                        "again", what, message.delivery_tag, type(exc).__name__, exc)
