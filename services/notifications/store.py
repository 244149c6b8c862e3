"""The queries of notifications: addressees, notices and deliveries, profiles, messages to
clients and the delivery log.  Each function takes the unit of work's session."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.kit import clock
from services.notifications.domain import Telling
from services.notifications.models import (
    ClientMessage,
    DealManager,
    Delivery,
    DeliveryAttempt,
    Notification,
    Preference,
    Recipient,
)

# A person's addresses and their channels for one kind of notice; a row even for a user
# who set up neither (known = false, channels NULL: the defaults).
_ADDRESSEE = text("""
SELECT r.user_id IS NOT NULL AS known, r.lang, r.email, r.telegram_chat_id, r.phone,
    p.channels
FROM (SELECT CAST(:user_id AS integer) AS user_id) u
LEFT JOIN recipients r ON r.user_id = u.user_id
LEFT JOIN preferences p ON p.user_id = u.user_id AND p.kind = :kind""")


# The same for the managers of deals, with each deal from the local projection (deal_known
# false: not projected yet, ask the deals service).  One statement text for any number
# of deals, so PostgreSQL plans it once.
_DEAL_ADDRESSEES = text("""
SELECT x.deal_id, d.deal_id IS NOT NULL AS deal_known, d.manager_id, d.name,
    r.user_id IS NOT NULL AS known, r.lang, r.email, r.telegram_chat_id, r.phone, p.channels
FROM unnest(CAST(:deal_ids AS bigint[])) AS x(deal_id)
LEFT JOIN deal_managers d ON d.deal_id = x.deal_id
LEFT JOIN recipients r ON r.user_id = d.manager_id
LEFT JOIN preferences p ON p.user_id = d.manager_id AND p.kind = :kind""")

# Every notice and delivery of a batch in one statement of one text whatever the batch
# size (columns as arrays): PostgreSQL prepares it once and SQLAlchemy never compiles it
# again, where a multi-row VALUES was a new statement for each size.  The notices ride
# along as a data-modifying CTE: PostgreSQL runs it though the main insert does not
# read it.
_SAVE_NOTICES = text("""
WITH told AS (
    INSERT INTO notifications (user_id, kind, title, body, link, deal_id, dedup_key)
    SELECT * FROM unnest(CAST(:n_user_id AS integer[]), CAST(:n_kind AS text[]),
        CAST(:n_title AS text[]), CAST(:n_body AS text[]), CAST(:n_link AS text[]),
        CAST(:n_deal_id AS bigint[]), CAST(:n_dedup_key AS text[]))
    ON CONFLICT DO NOTHING)
INSERT INTO deliveries (source_key, kind, recipient_key, user_id, channel, address, subject,
    body, status, sent_at, last_error, next_attempt_at)
SELECT * FROM unnest(CAST(:source_key AS text[]), CAST(:kind AS text[]),
    CAST(:recipient_key AS text[]), CAST(:user_id AS integer[]), CAST(:channel AS text[]),
    CAST(:address AS text[]), CAST(:subject AS text[]), CAST(:body AS text[]),
    CAST(:status AS text[]), CAST(:sent_at AS timestamptz[]), CAST(:last_error AS text[]),
    CAST(:next_attempt_at AS timestamptz[]))
ON CONFLICT DO NOTHING""")
_NOTICE_FIELDS = ("user_id", "kind", "title", "body", "link", "deal_id", "dedup_key")
_DELIVERY_FIELDS = ("source_key", "kind", "recipient_key", "user_id", "channel", "address",
                    "subject", "body", "status", "sent_at", "last_error", "next_attempt_at")


# -- telling a person ---------------------------------------------------------------------
def addressee(db: Session, user_id: int, kind: str) -> Any:
    return db.execute(_ADDRESSEE, {"user_id": user_id, "kind": kind}).one()


def deal_addressees(db: Session, deal_ids: set[int], kind: str) -> dict[int, Any]:
    return {row.deal_id: row for row in db.execute(
        _DEAL_ADDRESSEES, {"deal_ids": sorted(deal_ids), "kind": kind})}


def save_notices(db: Session, tellings: list[Telling]) -> None:
    """The in-app notices and every delivery of some tellings in one statement; a repeat
    (same keys) adds nothing."""
    notices: dict[tuple[Any, ...], dict[str, Any]] = {}
    deliveries: dict[tuple[Any, ...], dict[str, Any]] = {}
    for told in tellings:
        # one row per key: an event restated within a batch writes its rows once
        if told.notice is not None:
            notices.setdefault((told.notice["user_id"], told.notice["dedup_key"]), told.notice)
        for row in told.deliveries:
            deliveries.setdefault((row["source_key"], row["recipient_key"], row["channel"]),
                                  row)
    if not deliveries:
        return
    # in key order, so two transactions writing the same keys wait rather than deadlock
    rows = [deliveries[k] for k in sorted(deliveries)]
    told_rows = [notices[k] for k in sorted(notices)]
    params = {f: [row.get(f) for row in rows] for f in _DELIVERY_FIELDS}
    params.update({f"n_{f}": [row.get(f) for row in told_rows] for f in _NOTICE_FIELDS})
    db.execute(_SAVE_NOTICES, params)


def known_deal(db: Session, deal_id: int) -> DealManager | None:
    return db.get(DealManager, deal_id)


def remember_deal(db: Session, deal_id: int, manager_id: Any, name: Any, version: int) -> None:
    """The deal's manager and name as of ``version``; an older version changes nothing."""
    values = {"manager_id": int(manager_id) if manager_id is not None else None,
              "name": str(name or "")[:500], "version": version, "updated_at": clock.now()}
    db.execute(insert(DealManager).values(deal_id=deal_id, **values)
               .on_conflict_do_update(index_elements=["deal_id"], set_=values,
                                      where=DealManager.version <= version))


# -- in the app ---------------------------------------------------------------------------
def notifications_of(db: Session, user_id: int, unread_only: bool, limit: int,
                     deal_id: int | None) -> list[Notification]:
    stmt = select(Notification).where(Notification.user_id == user_id)
    if deal_id is not None:
        stmt = stmt.where(Notification.deal_id == deal_id)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return list(db.scalars(stmt.order_by(Notification.id.desc()).limit(limit)))


def unread(db: Session, user_id: int) -> int:
    return int(db.scalar(select(func.count()).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0)


def notification_to_open(db: Session, user_id: int, notification_id: int) -> Notification | None:
    return db.scalars(select(Notification).where(
        Notification.id == notification_id, Notification.user_id == user_id)
        .with_for_update()).first()


def mark_read(db: Session, user_id: int, ids: list[int] | None) -> int:
    stmt = (update(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None)))
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(ids))
    return int(db.execute(stmt.values(read_at=clock.now())).rowcount)  # type: ignore[attr-defined]


# -- the profile --------------------------------------------------------------------------
def recipient(db: Session, user_id: int, lock: bool = False) -> Recipient:
    """The person's row, made empty when they have none yet."""
    stmt = select(Recipient).where(Recipient.user_id == user_id)
    found = db.scalars(stmt.with_for_update() if lock else stmt).first()
    if found is None:
        db.execute(insert(Recipient).values(user_id=user_id).on_conflict_do_nothing())
        found = db.scalars(stmt.with_for_update()).one()
    return found


def known_recipient(db: Session, user_id: int) -> Recipient | None:
    return db.get(Recipient, user_id)


def address_of(db: Session, user_id: int, channel: str) -> str | None:
    """The person's address for ``channel`` as the profile has it now."""
    found = db.get(Recipient, user_id)
    if found is None:
        return None
    return {"email": found.email, "sms": found.phone,
            "telegram": found.telegram_chat_id}.get(channel)


def preferences(db: Session, user_id: int) -> dict[str, list[str]]:
    return {p.kind: list(p.channels) for p in db.scalars(
        select(Preference).where(Preference.user_id == user_id))}


def set_preference(db: Session, user_id: int, kind: str, channels: list[str]) -> None:
    db.execute(insert(Preference).values(user_id=user_id, kind=kind, channels=channels)
               .on_conflict_do_update(index_elements=["user_id", "kind"],
                                      set_={"channels": channels}))


# -- messages to clients ------------------------------------------------------------------
def message_by_request(db: Session, client_id: int, request_id: str) -> ClientMessage | None:
    return db.scalars(select(ClientMessage).where(
        ClientMessage.client_id == client_id, ClientMessage.request_id == request_id)).first()


def add_message(db: Session, **values: Any) -> ClientMessage | None:
    """The new message, or None when the same request made it concurrently."""
    row = db.execute(insert(ClientMessage).values(**values)
                     .on_conflict_do_nothing().returning(ClientMessage.id)).first()
    return db.get(ClientMessage, row[0]) if row is not None else None


def queue_message(db: Session, message: ClientMessage, subject: str) -> None:
    """The delivery that sends a message to a client's contact."""
    db.add(Delivery(
        source_key=f"client_message:{message.id}", kind="client_message",
        recipient_key=f"contact:{message.contact_id}", user_id=None,
        client_message_id=message.id, channel=message.channel, address=message.address,
        subject=subject, body=message.body, status="pending", next_attempt_at=clock.now()))
    db.flush()


def delivery_of_message(db: Session, message_id: int) -> Delivery | None:
    return db.scalars(select(Delivery).where(Delivery.client_message_id == message_id)).first()


def client_messages(db: Session, client_id: int,
                    limit: int) -> list[tuple[ClientMessage, Delivery | None]]:
    rows = db.execute(
        select(ClientMessage, Delivery)
        .outerjoin(Delivery, Delivery.client_message_id == ClientMessage.id)
        .where(ClientMessage.client_id == client_id)
        .order_by(ClientMessage.id.desc()).limit(limit)).all()
    return [(m, d) for m, d in rows]


# -- the delivery log ---------------------------------------------------------------------
def deliveries(db: Session, status: str | None, channel: str | None, user_id: int | None,
               limit: int, offset: int) -> list[Delivery]:
    stmt = select(Delivery)
    if status:
        stmt = stmt.where(Delivery.status == status)
    if channel:
        stmt = stmt.where(Delivery.channel == channel)
    if user_id is not None:
        stmt = stmt.where(Delivery.user_id == user_id)
    return list(db.scalars(stmt.order_by(Delivery.id.desc()).limit(limit).offset(offset)))


def status_counts(db: Session) -> dict[str, int]:
    return {k: int(v) for k, v in db.execute(
        select(Delivery.status, func.count()).group_by(Delivery.status)).all()}


def delivery(db: Session, delivery_id: int, lock: bool = False) -> Delivery | None:
    stmt = select(Delivery).where(Delivery.id == delivery_id)
    return db.scalars(stmt.with_for_update() if lock else stmt).first()


def attempts(db: Session, delivery_id: int) -> list[DeliveryAttempt]:
    return list(db.scalars(select(DeliveryAttempt).where(
        DeliveryAttempt.delivery_id == delivery_id).order_by(DeliveryAttempt.id)))


def send_again(db: Session, delivery: Delivery, user_id: int | None) -> None:
    """A new round of tries for ``delivery``, logged as sent again by hand."""
    now = clock.now()
    db.add(DeliveryAttempt(delivery_id=delivery.id, attempt=delivery.attempts,
                           started_at=now, finished_at=now, outcome="manual",
                           reason="sent again by hand", by_user_id=user_id))
    delivery.status, delivery.attempts = "pending", 0
    delivery.next_attempt_at, delivery.updated_at = now, now
    delivery.last_error = None
    db.flush()
