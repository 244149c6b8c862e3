"""The kit's batch consumer on a real broker and database: many deliveries in one
transaction, each event applied once, a poison event isolated, a failed delivery requeued
alone."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from services.kit.batch import consumes_batch
from services.kit.dependencies import CallLog, UnitOfWork
from services.kit.envelope import Envelope
from services.kit.errors import ValidationError
from services.notifications import models
from services.notifications.models import Notification
from tests.support import infra

REFUSED = 666  # a user id the handler refuses for good
FLAKY = 13  # a user id the handler fails on while FAILURES["left"] > 0
BATCHES: list[list[int]] = []
FAILURES = {"left": 0}


class Gatherer:
    """A small service built only from the kit; it borrows the notifications schema."""

    name = "gatherer"
    db = UnitOfWork(models.metadata)
    calls = CallLog()

    @consumes_batch("source", "thing_happened")
    def on_things(self, events: list[Envelope]) -> None:
        users = [int(e.data["user_id"]) for e in events]
        BATCHES.append(users)
        for event, user in zip(events, users, strict=True):
            if user == REFUSED:
                raise ValidationError("refused", field="user_id", key="probe.refused")
            if user == FLAKY and FAILURES["left"] > 0:
                FAILURES["left"] -= 1
                raise RuntimeError("the database went away")
            self.db.add(Notification(user_id=user, kind="thing", title=event.event_id,
                                     dedup_key=event.event_id))


def publish(uri: str, bodies: list[dict[str, Any]]) -> None:
    infra.publish_events(uri, "source", "thing_happened", bodies)


def things(*users: int) -> list[dict[str, Any]]:
    return [Envelope.new("thing_happened", {"user_id": u}).to_dict() for u in users]


def queued_while_down(start_service: Any, amqp_uri: str, bodies: list[dict[str, Any]]) -> None:
    """Declare the handler's queue, publish while no consumer runs, then start one: the
    backlog arrives at once, as a burst does."""
    start_service(Gatherer, "notifications").kill()
    publish(amqp_uri, bodies)
    BATCHES.clear()
    start_service(Gatherer, "notifications")


def notified(session_of: Any) -> list[int]:
    with session_of("notifications") as db:
        return sorted(db.scalars(select(Notification.user_id)
                                 .where(Notification.kind == "thing")))


def inbox_rows(session_of: Any) -> dict[str, str | None]:
    with session_of("notifications") as db:
        return {str(r.event_id): r.rejected for r in db.execute(
            select(models.inbox.c.event_id, models.inbox.c.rejected)
            .where(models.inbox.c.handler == "gatherer.on_things"))}


def test_a_burst_is_applied_in_batches_each_event_once(start_service, amqp_uri, session_of):
    bodies = things(*range(1, 151))
    # copies of the first fifty: delivered again, in the same batch or a later one
    queued_while_down(start_service, amqp_uri, bodies + bodies[:50])
    infra.wait_until(lambda: len(notified(session_of)) >= 150, message="all 150 applied")
    assert notified(session_of) == list(range(1, 151))
    assert set(inbox_rows(session_of)) == {b["event_id"] for b in bodies}
    assert max(len(b) for b in BATCHES) > 1, "the burst came one event per transaction"
    applied = [u for batch in BATCHES for u in batch]
    assert sorted(applied) == list(range(1, 151)), "a copy reached the handler again"


def test_a_refused_event_is_recorded_and_the_rest_of_its_batch_still_counts(
        start_service, amqp_uri, session_of):
    bodies = things(*range(1, 11), REFUSED, *range(11, 21))
    queued_while_down(start_service, amqp_uri, bodies)
    infra.wait_until(lambda: len(inbox_rows(session_of)) == 21, message="all 21 recorded")
    assert notified(session_of) == list(range(1, 21))
    rejected = {k: v for k, v in inbox_rows(session_of).items() if v}
    assert list(rejected) == [bodies[10]["event_id"]]
    assert rejected[bodies[10]["event_id"]].startswith("user_id: ")
    assert any(len(b) == 21 for b in BATCHES), "the events were not tried as one batch"


def test_an_event_that_fails_is_redelivered_alone_and_applied_once(start_service, amqp_uri,
                                                                   session_of):
    FAILURES["left"] = 2  # the whole batch, then the event on its own
    bodies = things(*range(1, 11), FLAKY)
    queued_while_down(start_service, amqp_uri, bodies)
    infra.wait_until(lambda: FLAKY in notified(session_of), message="the flaky event applied")
    assert notified(session_of) == sorted([*range(1, 11), FLAKY])
    with session_of("notifications") as db:
        assert db.scalar(select(func.count()).select_from(models.inbox)) == 11
    # the others were applied on their own after the batch failed, and never again: only
    # the failed one came back
    assert BATCHES[-1] == [FLAKY]
    assert all(sum(batch.count(u) for batch in BATCHES) <= 2 for u in range(1, 11))
