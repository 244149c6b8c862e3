"""``remote_many(..., meanwhile=...)``: the page's own lookups run after every call is sent
and before any answer is waited for, and the deadline counts from the sending."""
from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from flask import Flask, g

from gateway.aggregate import call
from gateway.remote import remote_many
from gateway.rpc import Reply


class Recorder:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    def call_async(self, service: str, method: str, *args: Any, **kwargs: Any) -> Reply:
        self.seen.append(f"sent {service}.{method}")
        reply = Reply(service, method)
        original = reply.result

        def result(deadline: float) -> Any:
            self.seen.append(f"waited {service}.{method}")
            reply._resolve({"result": method})
            return original(deadline)

        reply.result = result  # type: ignore[method-assign]
        return reply


def test_the_lookups_run_between_sending_and_waiting() -> None:
    seen: list[str] = []
    app = Flask(__name__)
    app.config["CRM"] = {"PAGE_DEADLINE": 2}
    app.extensions["services"] = SimpleNamespace(rpc=Recorder(seen))
    with app.test_request_context():
        g.request_id = "r1"
        panels = remote_many({"a": call("deals", "board"), "b": call("deals", "lists")},
                             meanwhile=lambda: seen.append("meanwhile"))
    assert seen == ["sent deals.board", "sent deals.lists", "meanwhile",
                    "waited deals.board", "waited deals.lists"]
    assert {k: p.data for k, p in panels.items()} == {"a": "board", "b": "lists"}


def test_slow_lookups_spend_the_budget_they_overlap() -> None:
    app = Flask(__name__)
    app.config["CRM"] = {}
    silent = SimpleNamespace(call_async=lambda service, method, *a, **k: Reply(service, method))
    app.extensions["services"] = SimpleNamespace(rpc=silent)
    with app.test_request_context():
        g.request_id = "r2"
        started = time.monotonic()
        panels = remote_many({"a": call("deals", "board")}, budget=0.3,
                             meanwhile=lambda: time.sleep(0.2))
    assert not panels["a"].ok and time.monotonic() - started < 0.45
