"""nameko dependencies of the notifications service that work in the background: the
dispatcher (sends due deliveries, retries, recovers interrupted sends) and the Telegram
linker (polls the bot for one-time link codes)."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import eventlet
from nameko.extensions import DependencyProvider
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from services.kit import clock
from services.kit.background import BackgroundWorker
from services.kit.db import make_engine, transaction
from services.kit.errors import ServiceUnavailable
from services.kit.lease import AdvisoryLease
from services.notifications import domain
from services.notifications.channels import (
    Channel,
    DeliveryResult,
    EmailChannel,
    SmsChannel,
    TelegramChannel,
    find_link_codes,
    next_offset,
)
from services.notifications.models import Delivery, DeliveryAttempt, Recipient, State
from services.notifications.policy import RetryPolicy

log = logging.getLogger("crm.notifications")


def _number(config: dict[str, Any], key: str, default: float) -> float:
    value = config.get(key)
    return float(value) if value not in (None, "") else default


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def build_channels(config: dict[str, Any], senders: int = 10) -> dict[str, Channel]:
    """The channels this installation has credentials for (the others are skipped);
    ``senders`` send at once, so e-mail keeps up to that many SMTP sessions open."""
    channels: dict[str, Channel] = {}
    read = _number(config, "HTTP_READ_TIMEOUT", 10.0)
    if config.get("SMTP_HOST"):
        channels["email"] = EmailChannel(
            host=str(config["SMTP_HOST"]), port=int(config.get("SMTP_PORT") or 25),
            sender=str(config.get("SMTP_FROM") or "crm@localhost"),
            user=config.get("SMTP_USER") or None, password=config.get("SMTP_PASSWORD") or None,
            starttls=_flag(config.get("SMTP_STARTTLS")),
            timeout=_number(config, "SMTP_TIMEOUT", 10.0), pool_size=senders,
            idle_seconds=_number(config, "SMTP_IDLE_SECONDS", 30.0))
    if config.get("TELEGRAM_BOT_TOKEN"):
        channels["telegram"] = TelegramChannel(
            str(config["TELEGRAM_BOT_TOKEN"]),
            base_url=str(config.get("TELEGRAM_API_URL") or "https://api.telegram.org"),
            read_timeout=read)
    if config.get("SMS_API_ID"):
        channels["sms"] = SmsChannel(
            str(config["SMS_API_ID"]), base_url=str(config.get("SMS_API_URL") or "https://sms.ru"),
            sender=config.get("SMS_SENDER") or None, read_timeout=read)
    return channels


def retry_policy(config: dict[str, Any]) -> RetryPolicy:
    base = _number(config, "NOTIFY_RETRY_BASE_SECONDS", 30.0)
    return RetryPolicy(max_attempts=int(config.get("NOTIFY_MAX_ATTEMPTS") or 6),
                       base_delay=base,
                       max_delay=max(base, _number(config, "NOTIFY_RETRY_MAX_SECONDS", 3600.0)),
                       max_retry_after=_number(config, "NOTIFY_MAX_RETRY_AFTER_SECONDS",
                                               6 * 3600.0))


# The results of sends, as many as finished meanwhile, in one statement of one text for
# any number (columns as arrays: prepared once, nothing compiled per batch).  A delivery
# another path already moved on (recovery, a retry by an administrator) is left alone;
# ``sent_at`` and ``provider_id`` change only when sent.
_RECORD_DELIVERIES = text("""
UPDATE deliveries d SET status = r.status, lease_until = NULL, updated_at = :now,
    sent_at = CASE WHEN r.ok THEN CAST(:now AS timestamptz) ELSE d.sent_at END,
    provider_id = CASE WHEN r.ok THEN r.provider_id ELSE d.provider_id END,
    last_error = r.last_error, next_attempt_at = r.next_attempt_at
FROM unnest(CAST(:id AS bigint[]), CAST(:attempts AS integer[]), CAST(:status AS text[]),
    CAST(:ok AS boolean[]), CAST(:provider_id AS text[]), CAST(:last_error AS text[]),
    CAST(:next_attempt_at AS timestamptz[]))
    AS r(id, attempts, status, ok, provider_id, last_error, next_attempt_at)
WHERE d.id = r.id AND d.status = 'sending' AND d.attempts = r.attempts""")
_RECORD_ATTEMPTS = text("""
UPDATE delivery_attempts a SET finished_at = :now, outcome = r.outcome, reason = r.reason
FROM unnest(CAST(:id AS bigint[]), CAST(:attempt AS integer[]), CAST(:outcome AS text[]),
    CAST(:reason AS text[])) AS r(id, attempt, outcome, reason)
WHERE a.delivery_id = r.id AND a.attempt = r.attempt AND a.finished_at IS NULL""")
_START_ATTEMPTS = text("""
INSERT INTO delivery_attempts (delivery_id, attempt)
SELECT * FROM unnest(CAST(:id AS bigint[]), CAST(:attempt AS integer[]))""")


class Dispatcher(BackgroundWorker):
    """Sends due deliveries.

    A batch is claimed with ``FOR UPDATE SKIP LOCKED`` and marked ``sending`` (with a
    lease) in a committed transaction *before* any provider is called, so replicas never
    send the same delivery and a crash mid-send leaves a visible trace.  A lease that runs
    out means the sender died: ``domain.after_interruption`` decides what happens then.
    """

    identifier = "dispatcher"

    def setup(self) -> None:
        config = self.container.config
        self.concurrency = int(config.get("NOTIFY_SEND_CONCURRENCY") or 10)
        # every send records its result in its own transaction: one connection each, or
        # the pool overflows and opens (and closes) a connection per delivery
        self.engine = make_engine(config["DB_URL"], pool_size=self.concurrency + 2)
        self.factory = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.channels = build_channels(config, self.concurrency)
        self.policy = retry_policy(config)
        self.public_url = str(config.get("PUBLIC_URL") or "http://127.0.0.1:8000")
        self.lease = _number(config, "NOTIFY_SEND_LEASE_SECONDS", 120.0)
        self.start_loop_state(self.concurrency, _number(config, "NOTIFY_POLL_SECONDS", 2.0))
        self._next_recovery = 0.0
        self.sent_hook: Callable[[int], None] | None = None  # benchmarks count sends
        self._results: list[tuple[Any, DeliveryResult]] = []
        self._recorder: Any = None
        # A finished send frees one sender; claiming for it alone cost a transaction per
        # delivery, which under load was the dispatcher's limit.  So a pass a send woke
        # claims only once a quarter of the senders are free (or none is busy); a pass the
        # timer or a new delivery woke claims whatever is free, so nothing waits longer.
        self.claim_at_least = max(1, self.concurrency // 4)
        self._send_woke = False

    def stop(self) -> None:
        self._running = False
        self.wake()
        self.pool.waitall()
        try:
            self.flush()  # a stop, not a kill: what was sent is recorded
        except Exception:
            log.exception("recording the last results failed")
        self._dispose()

    def _dispose(self) -> None:
        for channel in self.channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                close()
        super()._dispose()

    @property
    def configured(self) -> dict[str, bool]:
        return {name: name in self.channels for name in domain.EXTERNAL_CHANNELS}

    # A worker that queued deliveries wakes the loop once its transaction is committed.
    def get_dependency(self, worker_ctx: Any) -> Any:
        handle = super().get_dependency(worker_ctx)
        handle.configured = self.configured
        handle.public_url = self.public_url
        handle.channels = self.channels
        return handle

    # -- the loop -----------------------------------------------------------------------
    def run_pass(self) -> None:
        if time.monotonic() >= self._next_recovery:
            self._next_recovery = time.monotonic() + self.poll
            self.recover_interrupted()
        coalesce, self._send_woke = self._send_woke, False
        self.fill(coalesce)

    def fill(self, coalesce: bool = False) -> int:
        """Claim as many due deliveries as there are idle senders and start them; a
        finished send wakes the loop to claim the next (no batch waits for its slowest).
        With ``coalesce`` (a send woke the loop) a claim waits until ``claim_at_least``
        senders are free while others still send: their ends wake the loop again."""
        started = 0
        while self._running:
            free = self.pool.free()
            if free <= 0 or (coalesce and free < self.claim_at_least
                             and self.pool.running() > 0):
                break
            rows = self._claim(free)
            for row in rows:
                self.pool.spawn_n(self._send_then_wake, row)
            started += len(rows)
            if len(rows) < free:
                break
        return started

    def run_once(self) -> int:
        """Claim and send what is due now, waiting for the sends (tests, benchmarks)."""
        started = self.fill()
        self.pool.waitall()
        self.flush()
        return started

    def _claim(self, limit: int) -> list[Any]:
        with transaction(self.factory) as session:
            rows = session.execute(text(
                "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, "
                "lease_until = now() + make_interval(secs => :lease), updated_at = now() "
                "WHERE id IN (SELECT id FROM deliveries WHERE status IN ('pending', 'retrying')"
                " AND next_attempt_at <= now() ORDER BY next_attempt_at, id LIMIT :n "
                "FOR UPDATE SKIP LOCKED) RETURNING id, source_key, recipient_key, channel, "
                "address, subject, body, attempts"),
                {"lease": self.lease, "n": limit}).all()
            if rows:
                session.execute(_START_ATTEMPTS, {"id": [r.id for r in rows],
                                                  "attempt": [r.attempts for r in rows]})
        return list(rows)

    def _send_then_wake(self, row: Any) -> None:
        try:
            self._send(row)
        finally:
            self._send_woke = True
            self.wake()

    def _send(self, row: Any) -> None:
        channel = self.channels.get(row.channel)
        if channel is None:
            result = DeliveryResult.retry_later("channel not configured")
        else:
            try:
                result = channel.send(row.address or "", row.subject, row.body,
                                      idempotency_key=domain.idempotency_key(
                                          row.source_key, row.recipient_key, row.channel))
            except Exception as exc:  # a channel bug or bad configuration: retry, log loudly
                log.exception("channel %s failed on delivery %s", row.channel, row.id)
                result = DeliveryResult.retry_later(f"{type(exc).__name__}: {exc}")
        # Results are written by one recorder, as many per transaction as have finished
        # meanwhile (at hundreds of sends a second, a transaction each was most of the
        # work).  Until written, the delivery stays 'sending' under its lease: a crash
        # then is the same as a crash right after the send, and recovery decides.
        self._results.append((row, result))
        if self._recorder is None:
            self._recorder = eventlet.spawn(self._record_pending)

    def _record_pending(self) -> None:
        try:
            while self._results:
                batch, self._results = self._results, []
                try:
                    self._record(batch)
                except Exception:
                    # the leases run out and recovery decides; never lose the loop for this
                    log.exception("recording the results of %d deliveries failed", len(batch))
                    continue
                # one line for what was sent (at hundreds a second a line each is work
                # of its own), one line for each failure with its reason
                sent = [row.id for row, result in batch if result.ok]
                if sent:
                    log.info("sent %d deliveries: %s", len(sent), ", ".join(map(str, sent)))
                for row, result in batch:
                    if not result.ok:
                        log.warning("delivery %s via %s: %s %s", row.id, row.channel,
                                    result.outcome.value, result.reason)
                    elif self.sent_hook is not None:
                        self.sent_hook(row.id)
        finally:
            self._recorder = None

    def flush(self) -> None:
        """Wait until every finished send is recorded."""
        recorder = self._recorder
        if recorder is not None:
            recorder.wait()
        if self._results:
            self._record_pending()

    def _record(self, batch: list[tuple[Any, DeliveryResult]]) -> None:
        now = clock.now()
        deliveries, attempts = [], []
        for row, result in batch:
            values: dict[str, Any] = {"id": row.id, "attempts": row.attempts,
                                      "ok": result.ok, "provider_id": None,
                                      "last_error": None, "next_attempt_at": None}
            if result.ok:
                values.update(status="sent", provider_id=result.provider_id)
            elif result.permanent:
                values.update(status="failed", last_error=result.reason)
            else:
                retry_at = self.policy.next_attempt_at(row.attempts, now, result.retry_after)
                if retry_at is None:
                    values.update(status="failed", last_error=f"{result.reason} (gave up "
                                  f"after {row.attempts} tries)")
                else:
                    values.update(status="retrying", next_attempt_at=retry_at,
                                  last_error=result.reason)
            deliveries.append(values)
            attempts.append({"id": row.id, "attempt": row.attempts,
                             "outcome": result.outcome.value,
                             "reason": result.reason or result.provider_id})
        with transaction(self.factory) as session:
            session.execute(_RECORD_DELIVERIES, {"now": now, **_columns(deliveries)})
            session.execute(_RECORD_ATTEMPTS, {"now": now, **_columns(attempts)})

    def recover_interrupted(self) -> int:
        """Deliveries still 'sending' after their lease: their sender died mid-send."""
        now = clock.now()
        with transaction(self.factory) as session:
            stuck = session.scalars(select(Delivery).where(
                Delivery.status == "sending", Delivery.lease_until < now)
                .with_for_update(skip_locked=True).limit(100)).all()
            for delivery in stuck:
                status, reason = domain.after_interruption(
                    delivery.channel, delivery.attempts, self.policy.max_attempts)
                delivery.status, delivery.last_error = status, reason
                delivery.lease_until = None
                delivery.next_attempt_at = now if status == "retrying" else None
                delivery.updated_at = now
                session.execute(update(DeliveryAttempt).where(
                    DeliveryAttempt.delivery_id == delivery.id,
                    DeliveryAttempt.attempt == delivery.attempts,
                    DeliveryAttempt.finished_at.is_(None))
                    .values(finished_at=now, outcome="interrupted", reason=reason))
                log.warning("delivery %s via %s was interrupted mid-send: %s", delivery.id,
                            delivery.channel, status)
        return len(stuck)


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows of equal keys as one list per key (the arrays of the statements above)."""
    return {key: [row[key] for row in rows] for key in rows[0]} if rows else {}


class TelegramLinker(DependencyProvider):
    """Links users to Telegram chats: a user sends the bot the one-time code shown in their
    profile; this polls ``getUpdates`` and binds the code's owner to the chat.

    Only one process polls (Telegram answers 409 to a second poller): a cluster-wide
    advisory lease.  The updates offset is kept in the database, so a restart or a
    take-over by another replica neither loses nor repeats a code.
    """

    def setup(self) -> None:
        config = self.container.config
        self.enabled = bool(config.get("TELEGRAM_BOT_TOKEN"))
        self.bot_name = str(config.get("TELEGRAM_BOT_NAME") or "")
        self.code_minutes = int(config.get("TELEGRAM_CODE_MINUTES") or 15)
        self._running = False
        if not self.enabled:
            return
        self.channel = TelegramChannel(
            str(config["TELEGRAM_BOT_TOKEN"]),
            base_url=str(config.get("TELEGRAM_API_URL") or "https://api.telegram.org"))
        self.poll_timeout = int(_number(config, "TELEGRAM_POLL_TIMEOUT", 25))
        self.retry = _number(config, "TELEGRAM_RETRY_SECONDS", 5)
        self.engine = make_engine(config["DB_URL"], pool_size=2)
        self.factory = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.lease = AdvisoryLease(config["DB_URL"], "notifications.telegram")

    def get_dependency(self, worker_ctx: Any) -> TelegramLinker:
        return self

    def start(self) -> None:
        if self.enabled:
            self._running = True
            self.container.spawn_managed_thread(self._loop, identifier="telegram-linker")

    def stop(self) -> None:
        self._running = False
        if self.enabled:
            self.lease.dispose()
            self.engine.dispose()

    def kill(self) -> None:
        self.stop()

    def _loop(self) -> None:
        while self._running:
            try:
                if not self.lease.try_acquire():
                    eventlet.sleep(self.retry)
                    continue
                self.poll_once()
            except ServiceUnavailable as exc:
                wait = exc.details.get("retry_after") or self.retry
                log.warning("telegram getUpdates: %s (again in %s s)", exc, wait)
                eventlet.sleep(min(float(wait), 60.0))
            except Exception:
                log.exception("telegram linking pass failed")
                eventlet.sleep(self.retry)

    def poll_once(self) -> int:
        with transaction(self.factory) as session:
            state = session.get(State, "telegram_offset")
            offset = int(state.value) if state is not None else None
        updates = self.channel.get_updates(offset, poll_timeout=self.poll_timeout)
        if updates:
            self.apply(updates)
        return len(updates)

    def apply(self, updates: list[dict[str, Any]]) -> int:
        linked = 0
        now = clock.now()
        with transaction(self.factory) as session:
            for code in find_link_codes(updates):
                recipient = session.scalars(select(Recipient).where(
                    Recipient.telegram_code == code.code,
                    Recipient.telegram_code_expires_at > now).with_for_update()).first()
                if recipient is None:
                    continue
                recipient.telegram_chat_id = str(code.chat_id)
                recipient.telegram_code = recipient.telegram_code_expires_at = None
                recipient.updated_at = now
                self._confirm(session, recipient, code.update_id)
                linked += 1
                log.info("user %s linked Telegram chat %s", recipient.user_id, code.chat_id)
            session.execute(insert(State).values(key="telegram_offset",
                                                 value=next_offset(updates))
                            .on_conflict_do_update(index_elements=["key"],
                                                   set_={"value": next_offset(updates)}))
        if linked:
            dispatcher = next((d for d in self.container.dependencies
                               if isinstance(d, Dispatcher)), None)
            if dispatcher is not None:
                dispatcher.wake()
        return linked

    def _confirm(self, session: Session, recipient: Recipient, update_id: int) -> None:
        item = domain.notice("telegram_linked", {}, recipient.lang or "ru")
        session.execute(insert(Delivery).values(
            source_key=f"telegram_linked:{update_id}", kind="telegram_linked",
            recipient_key=f"user:{recipient.user_id}", user_id=recipient.user_id,
            channel="telegram", address=recipient.telegram_chat_id, subject=item.title,
            body=item.body, status="pending", next_attempt_at=clock.now())
            .on_conflict_do_nothing())

    def code_expiry(self) -> datetime:
        return clock.now() + timedelta(minutes=self.code_minutes)
