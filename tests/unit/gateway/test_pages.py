"""Gateway logic that needs no server: the merged feed and the parallel fan-out."""
from __future__ import annotations

import time

from gateway.aggregate import Panel, collect, unavailable
from gateway.feed import merge_feed
from gateway.rpc import Reply
from services.kit.errors import NotFound, RemoteTimeout


def test_feed_merges_calls_receipts_and_comments_newest_first():
    feed = merge_feed(
        calls=[{"started_at": "2026-01-02T10:00:00+00:00", "id": 1}],
        receipts=[{"created_at": "2026-01-03T09:00:00+00:00", "id": 2}],
        entries=[{"kind": "comment", "created_at": "2026-01-01T08:00:00+00:00", "id": 3}])
    assert [(e["kind"], e["item"]["id"]) for e in feed] == [("receipt", 2), ("call", 1),
                                                            ("comment", 3)]


def answered(body: dict) -> Reply:
    reply = Reply("svc", "m")
    reply._resolve(body)
    return reply


def test_a_late_service_leaves_only_its_panel_unavailable():
    silent = Reply("telephony", "list_calls")
    started = time.monotonic()
    panels = collect({"deal": answered({"result": {"id": 1}}), "calls": silent,
                      "client": answered({"error": {
                          "exc_path": "services.kit.errors.NotFound",
                          "exc_args": ["client 5 not found", {}]}})},
                     deadline=time.monotonic() + 0.2)
    assert time.monotonic() - started < 1
    assert panels["deal"] == Panel(data={"id": 1})
    assert isinstance(panels["calls"].error, RemoteTimeout) and unavailable(panels["calls"])
    assert isinstance(panels["client"].error, NotFound) and not unavailable(panels["client"])


def test_openapi_reads_success_statuses_from_the_views():
    from gateway.api.openapi import success_codes

    def created():
        return {"id": 1}, 201

    def accepted_or_created(flag):
        if flag:
            return {}, 202
        return {}, 201

    def plain():
        return {}

    assert success_codes(created) == ["201"]
    assert success_codes(accepted_or_created) == ["201", "202"]
    assert success_codes(plain) == ["200"]
