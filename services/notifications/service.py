"""Notifications service: telling people what needs them (MISSION N1–N3)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from services.kit.dependencies import CallLog, Remote, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.service import HealthCheck
from services.notifications import domain, models
from services.notifications.models import Notification


def notification_dict(n: Notification) -> dict[str, Any]:
    return {"id": n.id, "user_id": n.user_id, "kind": n.kind, "title": n.title, "body": n.body,
            "link": n.link, "deal_id": n.deal_id, "created_at": n.created_at,
            "read_at": n.read_at}


class NotificationsService(HealthCheck):
    name = "notifications"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    deals = Remote("deals")

    def _notify(self, user_id: int, notice: dict[str, str], dedup_key: str,
                deal_id: int | None = None) -> None:
        self.db.execute(insert(Notification).values(
            user_id=user_id, dedup_key=dedup_key, deal_id=deal_id, **notice)
            .on_conflict_do_nothing())

    @consumes("payments", "payment_received")
    def on_payment_received(self, event: Envelope) -> None:
        deal = self.deals.get_deal(event.data["deal_id"])
        if deal.get("manager_id") is None:
            return
        self._notify(int(deal["manager_id"]), domain.payment_received_notice(event.data, deal["name"]),
                     f"payment_received:{event.data['receipt_id']}", deal_id=deal["id"])

    @rpc
    def list_for_user(self, user_id: int, unread_only: bool = False,
                      limit: int = 50) -> dict[str, Any]:
        stmt = select(Notification).where(Notification.user_id == int(user_id))
        if unread_only:
            stmt = stmt.where(Notification.read_at.is_(None))
        items = self.db.scalars(stmt.order_by(Notification.id.desc()).limit(min(int(limit), 200)))
        unread = self.db.scalar(select(func.count()).where(Notification.user_id == int(user_id),
                                                           Notification.read_at.is_(None)))
        return {"unread": unread, "items": [notification_dict(n) for n in items]}

    @rpc
    def mark_read(self, user_id: int, ids: list[int] | None = None) -> int:
        stmt = (update(Notification)
                .where(Notification.user_id == int(user_id), Notification.read_at.is_(None)))
        if ids is not None:
            stmt = stmt.where(Notification.id.in_([int(i) for i in ids]))
        return self.db.execute(stmt.values(read_at=datetime.now(UTC))).rowcount
