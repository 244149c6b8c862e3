"""The queries of telephony: calls by their provider's id, the call lists, the webhook
log.  Each function takes the unit of work's session."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.telephony.models import Call, WebhookLog


def call_to_merge(db: Session, provider: str, provider_call_id: str) -> Call:
    """The call a piece belongs to, locked; made (status 'new') by its first piece."""
    db.execute(insert(Call).values(provider=provider, provider_call_id=provider_call_id,
                                   status="new", deal_ids=[]).on_conflict_do_nothing())
    return db.scalars(select(Call).where(
        Call.provider == provider, Call.provider_call_id == provider_call_id)
        .with_for_update()).one()


def unpublished_finished(db: Session, limit: int = 20) -> list[Call]:
    """Finished calls whose matching failed, claimed so that replicas share them."""
    return list(db.scalars(
        select(Call).where(Call.status == "finished", Call.finished_published.is_(False))
        .order_by(Call.id).limit(limit).with_for_update(skip_locked=True)))


def calls(db: Session, statuses: list[str], limit: int, offset: int, *,
          deal_id: int | None = None, client_id: int | None = None,
          contact_id: int | None = None, unknown: bool = False) -> list[Call]:
    """Calls newest first."""
    stmt = (select(Call).where(Call.status.in_(statuses))
            .order_by(Call.started_at.desc().nulls_last(), Call.id.desc())
            .limit(limit).offset(offset))
    if deal_id is not None:
        stmt = stmt.where(Call.deal_ids.contains([deal_id]))
    if client_id is not None:
        stmt = stmt.where(Call.client_id == client_id)
    if contact_id is not None:
        stmt = stmt.where(Call.contact_id == contact_id)
    if unknown:
        stmt = stmt.where(Call.contact_id.is_(None))
    return list(db.scalars(stmt))


def call(db: Session, call_id: int, lock: bool = False) -> Call | None:
    """A call people can see (not one still being assembled)."""
    stmt = select(Call).where(Call.id == call_id, Call.status != "new")
    return db.scalars(stmt.with_for_update() if lock else stmt).first()


def unmatched_from(db: Session, call: Call) -> list[Call]:
    """The other calls from the same number that nobody matched yet, locked."""
    return list(db.scalars(select(Call).where(
        Call.other_e164 == call.other_e164, Call.contact_id.is_(None),
        Call.id != call.id, Call.status != "new").with_for_update()))


def webhook_seen(db: Session, provider: str, digest: str) -> bool:
    return db.scalar(select(WebhookLog.id).where(
        WebhookLog.provider == provider, WebhookLog.digest == digest,
        WebhookLog.outcome.in_(("accepted", "ignored"))).limit(1)) is not None


def log_webhook(db: Session, **values: Any) -> bool:
    """Log an accepted or ignored webhook; False when the same payload was logged
    concurrently."""
    logged = db.execute(insert(WebhookLog).values(**values)
                        .on_conflict_do_nothing(index_elements=["provider", "digest"],
                                                index_where=WebhookLog.outcome.in_(
                                                    ("accepted", "ignored")))
                        .returning(WebhookLog.id)).first()
    return logged is not None


def webhooks(db: Session, outcome: str | None, limit: int) -> list[WebhookLog]:
    stmt = select(WebhookLog).order_by(WebhookLog.id.desc()).limit(limit)
    if outcome:
        stmt = stmt.where(WebhookLog.outcome == outcome)
    return list(db.scalars(stmt))


def recording_counts(db: Session) -> dict[str, int]:
    rows = db.execute(select(Call.recording_status, func.count())
                      .group_by(Call.recording_status)).all()
    return {status: int(count) for status, count in rows}
