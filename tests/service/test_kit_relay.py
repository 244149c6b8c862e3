"""The outbox relay on a real broker and database: a batch is published whole with its
confirms awaited together, marked only once confirmed, and a batch that fails falls back
to one event at a time so that the events before a bad one still go out."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.kit.envelope import Envelope
from services.kit.messaging import Relay, add_to_outbox
from services.notifications import models


def _fill(session: Any, count: int) -> list[str]:
    ids = []
    for n in range(count):
        envelope = Envelope.new("relay_probe", {"n": n})
        add_to_outbox(session, models.outbox, envelope, f"call-{n}")
        ids.append(envelope.event_id)
    session.commit()
    return ids


def _published(session: Any) -> list[bool]:
    return [at is not None for at in session.scalars(
        select(models.outbox.c.published_at).order_by(models.outbox.c.id))]


def test_a_batch_is_published_once_in_order_and_marked_when_confirmed(
        db_url, amqp_uri, spy, session_of):
    watch = spy("relay-probe", "relay_probe")
    relay = Relay("relay-probe", amqp_uri, models.outbox, batch_size=150)
    with session_of("notifications") as session:
        ids = _fill(session, 340)
        passes = []
        while (count := relay.publish_pending(session)) > 0:
            session.commit()
            passes.append(count)
        assert passes == [150, 150, 40]
        assert _published(session) == [True] * 340
    got = watch.wait_for("relay_probe", 340)
    assert [e["event_id"] for e in got] == ids
    assert [e["data"]["n"] for e in got] == list(range(340))
    relay.close()


def test_a_batch_that_fails_goes_one_by_one_and_stops_at_the_event_that_fails(
        db_url, amqp_uri, spy, session_of, monkeypatch):
    watch = spy("relay-probe", "relay_probe")
    relay = Relay("relay-probe", amqp_uri, models.outbox)
    publish = Relay._publish

    def refuse_the_sixth(producer: Any, row: Any) -> None:
        if row["data"]["n"] == 5:
            raise ConnectionError("the broker went away")
        publish(producer, row)

    monkeypatch.setattr(Relay, "_publish", staticmethod(refuse_the_sixth))
    with session_of("notifications") as session:
        ids = _fill(session, 8)
        assert relay.publish_pending(session) == 5
        session.commit()
        assert _published(session) == [True] * 5 + [False] * 3
        attempts = list(session.scalars(select(models.outbox.c.attempts)
                                        .order_by(models.outbox.c.id)))
        assert attempts == [0] * 5 + [1, 0, 0]
        monkeypatch.setattr(Relay, "_publish", staticmethod(publish))
        assert relay.publish_pending(session) == 3
        session.commit()
        assert _published(session) == [True] * 8
    got = watch.wait_for("relay_probe", 8)
    # the first batch's events may have reached the broker before it failed: a consumer's
    # inbox absorbs those repeats; every event arrives, and the last three exactly once
    assert {e["event_id"] for e in got} == set(ids)
    assert sorted(e["event_id"] for e in got if e["data"]["n"] >= 5) == sorted(ids[5:])
    relay.close()
