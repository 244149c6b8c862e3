"""API: in-app notifications, the user's notification profile, messages to clients'
contacts, and the delivery log (N1–N3).  Every endpoint declares its input and output with
the models below (``gateway.api.schema``)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import g
from pydantic import Field

from gateway.api import bp
from gateway.api.schema import Id, Input, Items, Limit, Output, Query, SmallId, endpoint
from gateway.remote import remote
from services.kit.contract.notifications import CHANNELS, MESSAGE_CHANNELS
from services.kit.errors import Forbidden

Channel = Literal[CHANNELS]  # type: ignore[valid-type]
Flag = Literal["0", "1"]


def admin() -> None:
    if "admin" not in g.user.roles:
        raise Forbidden("the delivery log is for administrators", section="deliveries")


class Notification(Output):
    id: int
    kind: str
    title: str
    created_at: str
    read_at: str | None


class Inbox(Output):
    unread: int
    items: list[Notification]


class Marked(Output):
    marked: int


class Profile(Output):
    user_id: int
    telegram: dict[str, Any]
    preferences: dict[str, list[str]]
    configured: dict[str, bool]


class Telegram(Output):
    linked: bool
    code: str | None


class Message(Output):
    id: int
    client_id: int
    contact_id: int
    channel: str
    status: str
    created_at: str


class Delivery(Output):
    id: int
    channel: str
    status: str
    attempts: int
    created_at: str


class DeliveryLog(Delivery):
    log: list[dict[str, Any]]


class Deliveries(Output):
    items: list[Delivery]
    counts: dict[str, int]


class ReadIds(Input):
    ids: Annotated[list[Id], Field(max_length=1000)] | None = None


class ProfileChange(Input):
    email: Annotated[str, Limit(254, required=False)] | None = None
    phone: Annotated[str, Limit(40, required=False)] | None = None
    lang: Literal["ru", "en"] | None = None
    preferences: Annotated[dict[Annotated[str, Limit(50)],
                                Annotated[list[Channel], Field(max_length=len(CHANNELS))]],
                           Field(max_length=50)] | None = None


class MessageSend(Input):
    contact_id: Id
    channel: Literal[MESSAGE_CHANNELS]  # type: ignore[valid-type]
    address: Annotated[str, Limit(254)]
    subject: Annotated[str, Limit(500, required=False)] = ""
    text: Annotated[str, Limit(10_000)]
    request_id: Annotated[str, Limit(100)] | None = Field(
        None, description="the same id sends once")


class InboxQuery(Query):
    unread: Flag | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50


class MessagesQuery(Query):
    limit: Annotated[int, Field(ge=1, le=500)] = 50


class DeliveriesQuery(Query):
    status: Literal["pending", "sending", "sent", "retrying", "failed", "skipped"] | None = None
    channel: Channel | None = None
    user_id: SmallId | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


@bp.route("/notifications")
@endpoint(section="", query=InboxQuery, response=Inbox)
def notifications_list(query: InboxQuery) -> Any:
    """The signed-in user's notifications, newest first"""
    return remote("notifications", "list_for_user", g.user.id,
                  unread_only=query.unread == "1", limit=query.limit)


@bp.route("/notifications/read", methods=["POST"])
@endpoint(section="", body=ReadIds, body_required=False, response=Marked)
def notifications_read(body: ReadIds) -> Any:
    """Mark notifications read: ``{"ids": [...]}``, or all of them without ids."""
    return {"marked": remote("notifications", "mark_read", g.user.id, body.ids)}


@bp.route("/notifications/profile")
@endpoint(section="", response=Profile)
def notifications_profile() -> Any:
    """Where the signed-in user is told things, and which kinds over which channels."""
    return remote("notifications", "get_profile", g.user.id)


@bp.route("/notifications/profile", methods=["PUT"])
@endpoint(section="", body=ProfileChange, response=Profile)
def notifications_profile_put(body: ProfileChange) -> Any:
    """Change e-mail / phone / language and per-kind channels (only what is given)."""
    data = body.sent()
    contact = {k: data[k] for k in ("email", "phone", "lang") if k in data}
    # one write: contact details and preferences are saved together or not at all
    return remote("notifications", "save_profile", g.user.id,
                  {**contact, "name": g.user.full_name} if contact else None,
                  data.get("preferences"))


@bp.route("/notifications/telegram-code", methods=["POST"])
@endpoint(section="", response=Telegram, status=201,
          statuses={409: "no Telegram bot is configured"})
def notifications_telegram_code() -> Any:
    """A one-time code to send to the bot; the bot links this user's chat."""
    return remote("notifications", "telegram_link_code", g.user.id), 201


@bp.route("/clients/<int:client_id>/messages")
@endpoint(section="clients", query=MessagesQuery, response=Items[Message])
def notifications_client_messages(client_id: int, query: MessagesQuery) -> Any:
    """Messages sent to the client's contacts, newest first, with delivery status."""
    return remote("notifications", "list_client_messages", client_id, limit=query.limit)


@bp.route("/clients/<int:client_id>/messages", methods=["POST"])
@endpoint(section="clients", body=MessageSend, response=Message, status=201)
def notifications_client_message_send(client_id: int, body: MessageSend) -> Any:
    """Send a contact of the client a message by e-mail, Telegram or SMS (N2)."""
    return remote("notifications", "send_to_contact", g.user.id, client_id,
                  body.contact_id, body.channel, body.address, body.subject, body.text,
                  request_id=body.request_id), 201


@bp.route("/notifications/deliveries")
@endpoint(section="", query=DeliveriesQuery, response=Deliveries)
def notifications_deliveries(query: DeliveriesQuery) -> Any:
    """The delivery log (administrators): ``status``, ``channel``, ``user_id`` filters."""
    admin()
    return remote("notifications", "list_deliveries", status=query.status,
                  channel=query.channel, user_id=query.user_id, limit=query.limit,
                  offset=query.offset)


@bp.route("/notifications/deliveries/<int:delivery_id>")
@endpoint(section="", response=DeliveryLog)
def notifications_delivery(delivery_id: int) -> Any:
    """One delivery with every attempt (when, result, reason)."""
    admin()
    return remote("notifications", "get_delivery", delivery_id)


@bp.route("/notifications/deliveries/<int:delivery_id>/retry", methods=["POST"])
@endpoint(section="", response=Delivery, status=201,
          statuses={409: "not failed or skipped, or still no address"})
def notifications_delivery_retry(delivery_id: int) -> Any:
    """Send a failed delivery again (a new round of tries)."""
    admin()
    return remote("notifications", "retry_delivery", delivery_id, user_id=g.user.id), 201
