"""Telephony intake: Asterisk AMI events (recorded sequences of real calls, renumbered)
written into the live AMI session at rising rates, until ``call_finished`` lags behind.

Each step writes whole calls at a fixed rate of AMI events per second for a few seconds;
the lag of a call is the time from writing its last event (the ``Cdr``) to its
``call_finished`` event arriving on the bus — matched to its contact over RPC, stored,
and published through the outbox.  The intake rate is the highest step whose calls
finished as fast as they were written, all with p99 lag under a second.
"""
from __future__ import annotations

import statistics
import threading
import time
import uuid
from typing import Any

from kombu import Connection, Consumer, Queue

from bench.report import percentile
from services.kit.messaging import event_exchange
from tests.support.pbx_standins import AmiStandIn, fixture_frames_renumbered
from tests.support.stack import Stack, wait_for

RATES = (300, 600, 900, 1200, 2400)  # AMI events per second
SECONDS = 3.0
FIXTURE = "inbound_missed"


class Arrivals:
    """Records when each call_finished arrives, by provider call id."""

    def __init__(self, uri: str) -> None:
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._queue = Queue(f"bench-calls-{uuid.uuid4().hex}", exchange=event_exchange("telephony"),
                            routing_key="call_finished", exclusive=True, auto_delete=True)
        self._thread = threading.Thread(target=self._run, args=(uri,), daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _on(self, body: Any, message: Any) -> None:
        self.seen[str(body["data"]["provider_call_id"])] = time.perf_counter()
        message.ack()

    def _run(self, uri: str) -> None:
        with Connection(uri) as conn, Consumer(conn.channel(), queues=[self._queue],
                                               callbacks=[self._on], accept=["json"]):
            self._ready.set()
            while not self._stop.is_set():
                try:
                    conn.drain_events(timeout=0.2)
                except TimeoutError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)


def _restart(stack: Stack, name: str, extra: dict[str, str | None]) -> dict[str, str | None]:
    saved = {key: stack.env.get(key) for key in extra}
    for key, value in extra.items():
        if value is None:
            stack.env.pop(key, None)
        else:
            stack.env[key] = value
    stack.stop(name)
    stack.start(name)
    stack.wait_healthy()
    return saved


def run(stack: Stack) -> None:
    ami = AmiStandIn("crm", "bench-secret").start()
    saved = _restart(stack, "telephony", {"AMI_HOST": ami.host, "AMI_PORT": str(ami.port),
                                          "AMI_USERNAME": "crm", "AMI_SECRET": "bench-secret"})
    arrivals = Arrivals(stack.env["AMQP_URI"])
    per_call = len(fixture_frames_renumbered(FIXTURE, "x"))
    try:
        wait_for(lambda: ami.connections, timeout=20, message="the AMI session")
        print(f"{'AMI ev/s':>9} {'calls/s':>8} {'finished/s':>11} {'lag p50 ms':>11} "
              f"{'lag p99 ms':>11}", flush=True)
        intake, serial = 0, 0
        for rate in RATES:
            calls = max(1, int(rate * SECONDS / per_call))
            written: dict[str, float] = {}
            started = time.perf_counter()
            for i in range(calls):
                serial += 1
                frames = fixture_frames_renumbered(FIXTURE, f"{serial:07d}")
                due = started + (i + 1) * per_call / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                ami.push(frames)
                call_id = "1700000200.60" + f"{serial:07d}"
                written[call_id] = time.perf_counter()
            deadline = time.perf_counter() + 30
            while time.perf_counter() < deadline and not all(c in arrivals.seen for c in written):
                time.sleep(0.05)
            lags = [(arrivals.seen[c] - t) * 1000 for c, t in written.items()
                    if c in arrivals.seen] or [float("nan")]
            last = max((arrivals.seen[c] for c in written if c in arrivals.seen), default=started)
            done = sum(1 for c in written if c in arrivals.seen)
            out = done / max(last - started, SECONDS)
            print(f"{rate:>9} {calls / SECONDS:>8.1f} {out:>11.1f} "
                  f"{statistics.median(lags):>11.1f} {percentile(lags, 99):>11.1f}"
                  + ("" if done == len(written) else f"   ({len(written) - done} late)"),
                  flush=True)
            kept_up = out >= 0.95 * calls / SECONDS  # finished as fast as they came
            if done == len(written) and kept_up and percentile(lags, 99) < 1000:
                intake = rate
        print(f"AMI intake without lag: {intake} events/s "
              f"({intake / per_call:.0f} calls/s of {per_call} events each; each call "
              f"matched over RPC, stored, published)", flush=True)
    finally:
        arrivals.close()
        ami.stop()
        _restart(stack, "telephony", saved)
