"""The shared kernel on a real broker and database: unit of work, outbox, inbox, RPC with
deadlines, typed errors, call log."""
from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import eventlet
import pytest
from kombu import Connection, Producer
from sqlalchemy import func, select, text

from services.kit.background import BackgroundWorker
from services.kit.dependencies import CallLog, Remote, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import NotFound, RemoteTimeout, ValidationError
from services.kit.messaging import event_exchange
from services.kit.timer import every
from services.notifications import models
from services.notifications.models import Notification
from tests.support import infra


class PayloadRefused(ValidationError):
    """A service's own error type: must reach callers as a ValidationError."""


class Probe:
    """A small service built only from the kit; it borrows the notifications schema."""

    name = "probe"
    db = UnitOfWork(models.metadata)
    calls = CallLog()
    sleeper = Remote("sleeper", timeout=0.5)

    @rpc
    def slow_query(self, seconds: float) -> float:
        return float(self.db.execute(text("SELECT pg_sleep(:s), :s"), {"s": seconds}).one()[1])

    @rpc
    def wait_for_lock(self, key: int) -> int:
        # bounded, so a blocked hub turns into a failed test rather than a hung one
        self.db.execute(text("SET LOCAL lock_timeout = '2s'"))
        self.db.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": key})
        return key

    @rpc
    def remember(self, user_id: int, fail_after: bool = False) -> int:
        row = Notification(user_id=user_id, kind="probe", title="probe", dedup_key=uuid.uuid4().hex)
        self.db.add(row)
        self.db.flush()
        self.db.emit("probe_remembered", {"notification_id": row.id, "user_id": user_id})
        if fail_after:
            raise ValidationError("refused after writing", field="fail_after")
        return row.id

    @rpc
    def refuse(self, kind: str) -> None:
        if kind == "missing":
            raise NotFound("no such thing", entity="thing", id=7)
        raise PayloadRefused("payload refused", field="payload")

    @rpc
    def ask_sleeper(self) -> Any:
        return self.sleeper.nap(2)

    @consumes("source", "thing_happened")
    def on_thing(self, event: Envelope) -> None:
        self.db.add(Notification(user_id=int(event.data["user_id"]), kind="thing",
                                 title=event.event_id, dedup_key=event.event_id))


TICKS: dict[str, int] = {"pending": 0, "runs": 0}


class Ticker:
    """A kit timer whose body does not commit: the kit must, and log by work done."""

    name = "ticker"
    db = UnitOfWork(models.metadata)
    calls = CallLog()

    @every("TICK_SECONDS", 60)
    def tick(self) -> int:
        TICKS["runs"] += 1
        done = TICKS["pending"]
        for _ in range(done):
            self.db.add(Notification(user_id=1, kind="tick", title="tick",
                                     dedup_key=uuid.uuid4().hex))
        TICKS["pending"] = 0
        return done


class PassCounter(BackgroundWorker):
    """Counts loop passes; polls rarely, so a pass soon after a call means it was woken."""

    identifier = "pass-counter"

    def setup(self) -> None:
        self.passes = 0
        self.start_loop_state(concurrency=1, poll=3600)

    def run_pass(self) -> None:
        self.passes += 1


class Queuer:
    name = "queuer"
    worker = PassCounter()

    @rpc
    def queue(self, fail: bool = False) -> None:
        self.worker.queued()
        if fail:
            raise ValidationError("refused", field="fail")


class Sleeper:
    name = "sleeper"

    @rpc
    def nap(self, seconds: float) -> str:
        eventlet.sleep(seconds)
        return "rested"


def count(session: Any, stmt: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(stmt.subquery())))


def test_ten_slow_queries_in_one_service_run_concurrently(start_service, rpc, session_of):
    """Ten queries of one service wait on a lock at the same time: psycopg's C wait function
    would block the eventlet hub, so only the first would ever reach the database."""
    start_service(Probe, "notifications")
    rpc.call("probe", "slow_query", 0)  # warm the pool
    holder = session_of("notifications")
    holder.execute(text("SELECT pg_advisory_lock(4242)"))
    replies = [rpc.call_async("probe", "wait_for_lock", 4242) for _ in range(10)]

    def waiting() -> int:
        holder.commit()  # pg_stat_activity is a snapshot per transaction
        return int(holder.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock_shared%'")))
    infra.wait_until(lambda: waiting() == 10, message="ten queries waiting at once")
    holder.execute(text("SELECT pg_advisory_unlock(4242)"))
    holder.close()
    assert [r.result(time.monotonic() + 10) for r in replies] == [4242] * 10


def test_event_written_with_the_change_is_published_after_commit(start_service, rpc, spy):
    events = spy("probe", "probe_remembered")
    start_service(Probe, "notifications")
    row_id = rpc.call("probe", "remember", 42)
    [event] = events.wait_for("probe_remembered")
    assert event["data"] == {"notification_id": row_id, "user_id": 42}
    assert uuid.UUID(event["event_id"]) and event["version"] == 1 and event["occurred_at"]


def test_rolled_back_change_publishes_nothing(start_service, rpc, session_of):
    start_service(Probe, "notifications")
    with pytest.raises(ValidationError) as refused:
        rpc.call("probe", "remember", 7, fail_after=True)
    assert refused.value.field == "fail_after"
    with session_of("notifications") as db:
        assert count(db, select(Notification)) == 0
        assert count(db, select(models.outbox)) == 0


def test_event_of_a_service_killed_right_after_commit_is_delivered_once(start_service, rpc, spy,
                                                                        session_of):
    events = spy("probe", "probe_remembered")
    # A relay that never runs models a process that dies between commit and publish.
    crashed = start_service(Probe, "notifications", OUTBOX_PUBLISH_AFTER_COMMIT=False,
                            OUTBOX_SWEEP_SECONDS=3600)
    rpc.call("probe", "remember", 5)
    crashed.kill()
    with session_of("notifications") as db:
        assert count(db, select(models.outbox).where(models.outbox.c.published_at.is_(None))) == 1
    assert events.of_type("probe_remembered") == []

    restarted = start_service(Probe, "notifications")
    [event] = events.wait_for("probe_remembered")
    assert event["data"]["user_id"] == 5
    relay = next(d for d in restarted.dependencies if isinstance(d, UnitOfWork))
    assert relay.publish_pending() == 0  # nothing left to publish a second time
    assert len(events.of_type("probe_remembered")) == 1


def publish_raw(uri: str, envelope: dict[str, Any]) -> None:
    with Connection(uri) as conn:
        producer = Producer(conn.default_channel, exchange=event_exchange("source"))
        producer.publish(envelope, routing_key="thing_happened", serializer="json",
                         declare=[event_exchange("source")])


def notified_users(session_of: Any) -> list[int]:
    with session_of("notifications") as db:
        return sorted(db.scalars(select(Notification.user_id)
                                 .where(Notification.kind == "thing")))


def test_duplicate_delivery_of_an_event_is_applied_once(start_service, amqp_uri, session_of):
    # One worker handles messages in order, so the sentinel's effect means the two copies
    # before it were handled too.
    start_service(Probe, "notifications", max_workers=1)
    envelope = Envelope.new("thing_happened", {"user_id": 9}).to_dict()
    publish_raw(amqp_uri, envelope)
    publish_raw(amqp_uri, envelope)
    publish_raw(amqp_uri, Envelope.new("thing_happened", {"user_id": 10}).to_dict())
    infra.wait_until(lambda: 10 in notified_users(session_of), message="the sentinel event")
    assert notified_users(session_of) == [9, 10]
    with session_of("notifications") as db:
        assert count(db, select(models.inbox)) == 2


def test_event_of_an_unknown_version_is_ignored(start_service, amqp_uri, session_of):
    start_service(Probe, "notifications", max_workers=1)
    publish_raw(amqp_uri, Envelope.new("thing_happened", {"user_id": 1}, version=99).to_dict())
    publish_raw(amqp_uri, Envelope.new("thing_happened", {"user_id": 2}).to_dict())
    infra.wait_until(lambda: 2 in notified_users(session_of), message="the sentinel event")
    assert notified_users(session_of) == [2]


def test_remote_errors_arrive_typed(start_service, rpc):
    start_service(Probe, "notifications")
    with pytest.raises(NotFound) as missing:
        rpc.call("probe", "refuse", "missing")
    # the details travel as JSON, so numbers stay numbers (nameko alone makes them text)
    assert missing.value.details == {"entity": "thing", "id": 7}
    with pytest.raises(ValidationError) as refused:
        rpc.call("probe", "refuse", "payload")
    assert type(refused.value) is ValidationError
    assert refused.value.field == "payload"


def test_rpc_between_services_gives_up_at_its_deadline(start_service, rpc):
    start_service(Probe, "notifications")
    start_service(Sleeper)
    started = time.monotonic()
    with pytest.raises(RemoteTimeout) as late:
        rpc.call("probe", "ask_sleeper")
    assert time.monotonic() - started < 1.9
    assert "sleeper.nap" in str(late.value)


def test_every_call_logs_one_line_with_its_call_id(start_service, rpc, caplog):
    start_service(Probe, "notifications")
    caplog.set_level("INFO", logger="crm.calls")
    rpc.call_async("probe", "slow_query", 0, call_id="gateway.req-123").result(
        time.monotonic() + 5)
    lines = [r.getMessage() for r in caplog.records if r.name == "crm.calls"]
    assert len(lines) == 1
    assert '"entrypoint": "slow_query"' in lines[0]
    assert '"parent_call_id": "gateway.req-123"' in lines[0]
    assert '"call_id": "probe.slow_query.' in lines[0]


def test_a_timer_commits_its_work_and_logs_idle_runs_at_debug(start_service, session_of,
                                                              caplog):
    caplog.set_level("DEBUG", logger="crm.calls")
    TICKS.update(pending=0, runs=0)
    start_service(Ticker, "notifications", TICK_SECONDS=0.05)
    infra.wait_until(lambda: TICKS["runs"] >= 2, message="idle timer runs")
    TICKS["pending"] = 2
    with session_of("notifications") as s:
        infra.wait_until(lambda: s.scalar(select(func.count()).select_from(Notification)
                                          .where(Notification.kind == "tick")) == 2,
                         message="the timer's rows committed")
    ticks = [r for r in caplog.records if r.name == "crm.calls" and '"tick"' in r.getMessage()]
    assert {r.levelname for r in ticks} == {"DEBUG", "INFO"}
    assert sum(r.levelname == "INFO" for r in ticks) == 1


def test_old_published_events_and_remembered_event_ids_are_purged(start_service, session_of):
    container = start_service(Probe, "notifications")
    long_ago = datetime.now(UTC) - timedelta(days=40)
    with session_of("notifications") as db:
        for published in (long_ago, None, datetime.now(UTC)):
            db.execute(models.outbox.insert().values(
                event_id=str(uuid.uuid4()), type="t", version=1, occurred_at=long_ago, data={},
                published_at=published))
        for applied in (long_ago, datetime.now(UTC)):
            db.execute(models.inbox.insert().values(handler="h", event_id=str(uuid.uuid4()),
                                                    type="t", applied_at=applied))
        db.commit()
    uow = next(d for d in container.dependencies if isinstance(d, UnitOfWork))
    uow.purge()
    with session_of("notifications") as db:
        kept = db.execute(select(models.outbox.c.published_at)).scalars().all()
        assert len(kept) == 2 and None in kept  # unpublished rows are never purged
        assert count(db, select(models.inbox)) == 1


def test_a_background_pass_follows_a_committed_queuing_call(start_service, rpc):
    container = start_service(Queuer)
    counter = next(d for d in container.dependencies if isinstance(d, PassCounter))
    rpc.call("queuer", "queue")
    # polling is hourly: only the wake after the commit can have run this pass
    infra.wait_until(lambda: counter.passes >= 1, message="a pass after the commit")


def test_a_failed_queuing_call_wakes_nothing(start_service, rpc):
    container = start_service(Queuer)
    counter = next(d for d in container.dependencies if isinstance(d, PassCounter))
    with pytest.raises(ValidationError):
        rpc.call("queuer", "queue", fail=True)
    # the worker's result hooks run after its reply: wait until they have run
    infra.wait_until(lambda: not container._worker_threads, message="the worker finished")
    assert not counter._wake.ready() and counter.passes == 0
