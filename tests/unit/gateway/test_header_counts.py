"""The header's counts (gateway/header.py): sent early with a page's own calls, collected
at render without a second round of RPCs."""
from __future__ import annotations

import types
from typing import Any

import pytest
from flask import Flask, g

from gateway import header
from gateway.rpc import Reply


class FakeRpc:
    """Answers at once with the given results; records every call sent."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.sent: list[str] = []

    def call_async(self, service: str, method: str, *args: Any, **kwargs: Any) -> Reply:
        self.sent.append(f"{service}.{method}")
        reply = Reply(service, method)
        reply._resolve({"result": self.answers[f"{service}.{method}"]})
        return reply


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRpc:
    rpc = FakeRpc({"notifications.unread_count": 4, "intake.count_open": 7})
    monkeypatch.setattr(header, "rpc", lambda: rpc)
    monkeypatch.setattr("gateway.remote.rpc", lambda: rpc)
    return rpc


def _as_manager() -> None:
    g.request_id = "test"
    g.user = types.SimpleNamespace(id=5, roles=["manager"])


def test_counts_sent_early_are_collected_without_asking_again(fake: FakeRpc) -> None:
    with Flask(__name__).test_request_context():
        _as_manager()
        header.ask_early()
        assert sorted(fake.sent) == ["intake.count_open", "notifications.unread_count"]
        assert header.counts() == {"unread": 4, "leads": 7}
        assert header.counts() == {"unread": 4, "leads": 7}
        assert len(fake.sent) == 2


def test_a_page_that_brings_the_bell_itself_sends_only_the_leads(fake: FakeRpc) -> None:
    with Flask(__name__).test_request_context():
        _as_manager()
        header.ask_early(unread=False)
        g.unread = 2  # as the deal page's notifications panel sets it
        assert fake.sent == ["intake.count_open"]
        assert header.counts() == {"unread": 2, "leads": 7}
        assert fake.sent == ["intake.count_open"]


def test_without_an_early_send_the_counts_are_asked_together_at_render(
        fake: FakeRpc, monkeypatch: pytest.MonkeyPatch) -> None:
    app = Flask(__name__)
    app.config["CRM"] = {}
    with app.test_request_context():
        _as_manager()
        assert header.counts() == {"unread": 4, "leads": 7}
        assert sorted(fake.sent) == ["intake.count_open", "notifications.unread_count"]


def test_a_visitor_who_is_not_signed_in_sends_nothing(fake: FakeRpc) -> None:
    with Flask(__name__).test_request_context():
        g.user = None
        header.ask_early()
        assert header.counts() == {"unread": None, "leads": None}
        assert fake.sent == []
