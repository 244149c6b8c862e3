"""Messages to clients' contacts (N2): a manager writes to a contact of a client by
e-mail, Telegram or SMS; the message is logged, listed with the client and sent as a
delivery like any other."""
from __future__ import annotations

from typing import Any

from services.kit.entrypoints import rpc
from services.kit.errors import NotFound, ServiceUnavailable
from services.kit.parse import identifier
from services.notifications import domain, store
from services.notifications.models import ClientMessage
from services.notifications.schemas import message_dict


class MessagesEntrypoints:
    """The messages part of ``NotificationsService`` (its dependencies: ``db``,
    ``clients``, ``dispatch``)."""

    db: Any
    clients: Any
    dispatch: Any

    @rpc
    def send_to_contact(self, user_id: int, client_id: int, contact_id: int, channel: str,
                        address: str, subject: str, text: str,
                        request_id: str | None = None) -> dict[str, Any]:
        """Send a contact of a client a message by e-mail, Telegram or SMS; it is logged
        and listed in the client's messages.  The same ``request_id`` sends once."""
        uid = identifier(user_id, "user_id")
        cid = identifier(client_id, "client_id")
        pid = identifier(contact_id, "contact_id")
        message = domain.client_message(channel, address, subject, text)
        request_id = domain.request_id(request_id)
        if request_id:
            earlier = store.message_by_request(self.db, cid, request_id)
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
        saved = store.add_message(
            self.db, client_id=cid, contact_id=pid, contact_name=contact.get("name"),
            user_id=uid, channel=message.channel, address=message.address,
            subject=message.subject, body=message.text, request_id=request_id)
        if saved is None:  # the same request, concurrently
            earlier = store.message_by_request(self.db, cid, str(request_id))
            assert earlier is not None
            return self._message(earlier)
        store.queue_message(self.db, saved, domain.message_subject(message))
        self.dispatch.queued()
        result = self._message(saved)
        self.db.emit("client_message_created", result)
        return result

    def _message(self, message: ClientMessage) -> dict[str, Any]:
        result = message_dict(message, store.delivery_of_message(self.db, message.id))
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
        return [message_dict(m, d) for m, d in store.client_messages(
            self.db, int(client_id), max(1, min(int(limit), 200)))]
