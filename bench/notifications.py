"""Notifications throughput: ``payment_received`` events (published as the payments
service does) to e-mails accepted by a local SMTP server, at rising offered rates.

Each step offers events at a fixed rate for a few seconds and reports what came out:
delivered e-mails per second and the latency from publishing the event to the SMTP server
holding the message (p50/p99).  The sustained rate is the highest step whose deliveries
kept up with the offer and whose p99 stayed under a second.
"""
from __future__ import annotations

import os
import smtplib
import statistics
import threading
import time
from email.message import EmailMessage
from typing import Any

from kombu import Connection, Producer

from bench.profile import Profile
from bench.report import percentile, verdict
from gateway.rpc import RpcClient
from services.kit.envelope import Envelope
from services.kit.messaging import event_exchange
from services.notifications.channels.email import message_id
from services.notifications.domain import idempotency_key
from tests.support.notify_standins import SmtpStandin
from tests.support.stack import Stack

RATES = (25, 50, 100, 150, 200, 300, 400)
SECONDS = 4.0
SENDER_DOMAIN = "bench.test"
GOAL = 300  # events/s sustained with p99 <= 1 s
# BENCH_NOTIFY_PROFILE=<rate>: py-spy samples the service during that step (e.g. 150)
PROFILE_RATE = int(os.environ.get("BENCH_NOTIFY_PROFILE") or 0)
FLOOR_MESSAGES = 300


class TimedSmtp(SmtpStandin):
    """Records when each message arrived, by Message-ID."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, float] = {}
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        raw = (envelope.original_content or envelope.content).decode("utf-8", "replace")
        for line in raw.splitlines():
            if line.lower().startswith("message-id:"):
                with self._lock:
                    self.arrived[line.split(":", 1)[1].strip()] = time.perf_counter()
                break
        return reply


def smtp_floor(smtp: TimedSmtp) -> float:
    """Messages/s one SMTP session delivers to the same stand-in: what any sender could do."""
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as session:
        started = time.perf_counter()
        for n in range(FLOOR_MESSAGES):
            message = EmailMessage()
            message["From"], message["To"] = f"crm@{SENDER_DOMAIN}", "anna@bench.test"
            message["Subject"], message["Message-ID"] = "floor", f"<floor-{n}@{SENDER_DOMAIN}>"
            message.set_content("Оплата 100.00 RUB")
            session.send_message(message)
        return FLOOR_MESSAGES / (time.perf_counter() - started)


def _restart_notifications(stack: Stack, extra: dict[str, str]) -> dict[str, str | None]:
    saved = {key: stack.env.get(key) for key in extra}
    stack.env.update(extra)
    stack.stop("notifications")
    stack.start("notifications")
    stack.wait_healthy()
    return saved


def _restore(stack: Stack, saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            stack.env.pop(key, None)
        else:
            stack.env[key] = value
    stack.stop("notifications")
    stack.start("notifications")
    stack.wait_healthy()


def run(stack: Stack) -> None:
    smtp = TimedSmtp().start()
    saved = _restart_notifications(stack, {
        "SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port),
        "SMTP_FROM": f"CRM <crm@{SENDER_DOMAIN}>", "NOTIFY_POLL_SECONDS": "0.5",
        "NOTIFY_SEND_CONCURRENCY": "20"})
    rpc = RpcClient(stack.env["AMQP_URI"], timeout=10, name="bench-notify")
    try:
        me = stack.ok("GET", "/me")
        rpc.call("notifications", "set_recipient", me["id"], {"email": "anna@bench.test"})
        rpc.call("notifications", "set_preferences", me["id"],
                 {"payment_received": ["app", "email"]})
        client = stack.ok("POST", "/clients", json={"kind": "person", "name": "Бенч Почта"})
        deal = stack.ok("POST", "/deals", json={"name": "Бенч", "client_id": client["id"]})
        receipt = 10_000_000
        print(f"{'offered/s':>10} {'delivered/s':>12} {'p50 ms':>9} {'p99 ms':>9}", flush=True)
        sustained, sustained_p99, failed = 0, float("nan"), 0
        floor = smtp_floor(smtp)
        with Connection(stack.env["AMQP_URI"]) as conn:
            exchange = event_exchange("payments")
            producer = Producer(conn.default_channel, exchange=exchange)
            exchange(producer.channel).declare()
            for rate in RATES:
                profile = (Profile(stack.procs["notifications"].pid, SECONDS + 2,
                                   "notifications")
                           if rate == PROFILE_RATE else None)
                sent: dict[str, float] = {}
                total = int(rate * SECONDS)
                started = time.perf_counter()
                for i in range(total):
                    receipt += 1
                    due = started + i / rate
                    pause = due - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                    envelope = Envelope.new("payment_received", {
                        "receipt_id": receipt, "payment_id": receipt, "deal_id": deal["id"],
                        "amount": "100.00", "currency": "RUB", "received_on": "2026-03-02",
                        "source": "bench"})
                    key = idempotency_key(f"payment_received:{receipt}", f"user:{me['id']}",
                                          "email")
                    sent[message_id(key, SENDER_DOMAIN)] = time.perf_counter()
                    producer.publish(envelope.to_dict(), routing_key="payment_received",
                                     serializer="json", delivery_mode=2)
                offered_for = time.perf_counter() - started
                deadline = time.perf_counter() + 30
                while time.perf_counter() < deadline and not all(m in smtp.arrived for m in sent):
                    time.sleep(0.05)
                done = [smtp.arrived[m] - t for m, t in sent.items() if m in smtp.arrived]
                last = max((smtp.arrived[m] for m in sent if m in smtp.arrived), default=started)
                rate_out = len(done) / max(last - started, offered_for)
                latencies = [d * 1000 for d in done] or [float("nan")]
                print(f"{rate:>10} {rate_out:>12.1f} {statistics.median(latencies):>9.1f} "
                      f"{percentile(latencies, 99):>9.1f}"
                      + ("" if len(done) == len(sent) else f"   ({len(sent) - len(done)} late)"),
                      flush=True)
                if len(done) == len(sent) and rate_out >= 0.95 * rate and percentile(
                        latencies, 99) < 1000:
                    sustained, sustained_p99 = rate, percentile(latencies, 99)
                    failed = 0
                else:
                    failed += 1
                if profile is not None:
                    profile.top()
                if failed >= 2 and rate >= PROFILE_RATE:
                    break  # two rates in a row not kept up with: higher ones will not be
        print(f"sustained payment_received -> e-mail: {sustained} events/s "
              f"(p99 {sustained_p99:.0f} ms, 2 cores shared by every process)", flush=True)
        verdict("payment_received -> e-mail, sustained", sustained, "events/s", floor=floor,
                floor_name="one SMTP session alone", goal=GOAL,
                goal_text=f">= {GOAL} with p99 <= 1 s,")
    finally:
        rpc.close()
        smtp.stop()
        _restore(stack, saved)
