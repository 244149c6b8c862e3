"""The deal page's Server-Timing header (gateway/timing.py)."""
from __future__ import annotations

from flask import Flask, Response, g

from gateway.timing import header, phase, with_timing


def test_the_header_lists_each_phase_in_milliseconds() -> None:
    assert header({"rpc": 12.3456, "render": 0.5}) == "rpc;dur=12.35, render;dur=0.50"


def test_phases_of_a_request_add_up_and_reach_the_response() -> None:
    app = Flask(__name__)
    with app.test_request_context():
        with phase("rpc"):
            pass
        with phase("rpc"):
            pass
        with phase("render"):
            pass
        assert set(g.timing) == {"rpc", "render"} and all(v >= 0 for v in g.timing.values())
        sent = with_timing(Response("ok")).headers["Server-Timing"]
        assert [part.split(";")[0] for part in sent.split(", ")] == ["rpc", "render"]


def test_a_request_that_timed_nothing_sends_no_header() -> None:
    app = Flask(__name__)
    with app.test_request_context():
        assert "Server-Timing" not in with_timing(Response("ok")).headers
