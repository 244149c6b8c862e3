"""Chaos: receipts, comments and status changes from several threads, clients retrying with
Idempotency-Key as integrations do, while every service and the gateway is SIGKILLed in
turn and the machine's RabbitMQ restarts once.  Then nothing is lost, nothing is doubled and
no process is left dead.

It restarts the RabbitMQ of this machine (as test_resilience.py does): the end-to-end tier
owns that broker while it runs."""
from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
import requests

from deploy.procfile import processes
from tests.support.stack import PASSWORD, Stack, wait_for

pytestmark = pytest.mark.e2e

RETRYABLE = {409, 500, 502, 503, 504}
PACE = 0.4  # seconds between one thread's writes: a steady load, not a flood
MAX_OPS = 150  # per thread: notifications are listed 200 at a time


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


@dataclass
class Load:
    """One integration writing: every write retried with its key until acknowledged."""

    stack: Stack
    token: str
    stop: threading.Event
    acked: list[tuple[str, Any]] = field(default_factory=list)
    sent: int = 0
    retries: int = 0
    refused: list[str] = field(default_factory=list)

    def write(self, method: str, path: str, body: dict[str, Any]) -> Any:
        key = uuid.uuid4().hex
        deadline = time.monotonic() + 90
        self.sent += 1
        while time.monotonic() < deadline:
            try:
                response = requests.request(
                    method, f"{self.stack.url}/api/v1{path}", json=body, timeout=6,
                    headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": key})
            except requests.RequestException:
                response = None
            if response is not None and response.status_code < 300:
                self.acked.append((key, response.json()))
                return response.json()
            if response is not None and response.status_code not in RETRYABLE:
                self.refused.append(f"{path} {response.status_code} {response.text[:200]}")
                return None
            self.retries += 1
            threading.Event().wait(0.25)  # back off before the retry, as clients do
        self.refused.append(f"{path}: no answer in 90 s")
        return None


def test_chaos_kills_every_process_and_restarts_rabbitmq_and_nothing_is_lost_or_doubled(
        stack: Stack):
    username = f"chaos{uuid.uuid4().hex[:6]}"
    stack.ok("POST", "/admin/users", user="admin", json={
        "username": username, "full_name": "Хаос Менеджер", "password": PASSWORD,
        "roles": ["manager"]})
    me = username
    client = stack.ok("POST", "/clients", user=me, json={"name": "ООО «Хаос»", "kind": "person"})
    deals = [stack.ok("POST", "/deals", user=me, json={"name": f"Хаос {n}",
                                                        "client_id": client["id"]})
             for n in range(2)]
    planned = [stack.ok("POST", f"/deals/{d['id']}/payments", user=me, json={
        "amount": "1000000.00", "due_date": str(date.today() + timedelta(days=30))})
        for d in deals]
    moving = stack.ok("POST", "/deals", user=me, json={"name": "Хаос: статусы",
                                                        "client_id": client["id"]})
    stop = threading.Event()
    token = stack.token(me)
    receipts, comments, statuses = (Load(stack, token, stop) for _ in range(3))

    def pay() -> None:
        n = 0
        while not stop.is_set() and n < MAX_OPS:
            payment = planned[n % len(planned)]
            receipts.write("POST", f"/payments/{payment['id']}/receipts",
                           {"amount": "1.00", "comment": f"chaos receipt {n}"})
            n += 1
            stop.wait(PACE)

    def comment() -> None:
        n = 0
        while not stop.is_set() and n < MAX_OPS:
            deal = deals[n % len(deals)]
            comments.write("POST", f"/deals/{deal['id']}/comments",
                           {"text": f"chaos comment {uuid.uuid4().hex}"})
            n += 1
            stop.wait(PACE)

    def move() -> None:
        version, n = moving["version"], 0
        while not stop.is_set() and n < MAX_OPS:
            target = ("proposal", "negotiation")[n % 2]
            moved = statuses.write("POST", f"/deals/{moving['id']}/status",
                                   {"status": target, "version": version})
            if moved is None:
                return
            version, n = moved["version"], n + 1
            stop.wait(PACE)

    threads = [threading.Thread(target=fn, daemon=True) for fn in (pay, comment, move)]
    for thread in threads:
        thread.start()
    try:
        def acked() -> int:
            return len(receipts.acked) + len(comments.acked) + len(statuses.acked)

        for name in processes():
            before = acked()
            stack.kill(name)
            stack.start(name)
            stack.wait_healthy(timeout=60)
            wait_for(lambda b=before: acked() > b or not any(t.is_alive() for t in threads),
                     timeout=30, message=f"writes going through again after {name} restarted")
        rabbitmqctl("stop_app")
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
        stack.wait_healthy(timeout=90)
        wait_for(lambda: len(receipts.acked) > 0, message="receipts acknowledged")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)

    assert not receipts.refused and not comments.refused and not statuses.refused, \
        (receipts.refused, comments.refused, statuses.refused)
    dead = [name for name, proc in stack.procs.items() if proc.poll() is not None]
    assert dead == [] and set(stack.procs) == set(processes())

    # receipts: every acknowledged one present once, none doubled
    booked = [r for p in planned
              for r in stack.ok("GET", f"/deals/{p['deal_id']}/payments", user=me)["receipts"]]
    booked_ids = Counter(r["id"] for r in booked)
    by_comment = Counter(r.get("comment") for r in booked)
    acked_receipts = {body["receipt"]["id"] for _, body in receipts.acked}
    assert acked_receipts <= set(booked_ids)
    assert max(by_comment.values()) == 1 and max(booked_ids.values()) == 1
    assert len(booked) == len(receipts.acked)

    # their events' effects: each deal's paid amount, one notification per receipt
    for payment in planned:
        mine = sum(1 for r in booked if r["planned_payment_id"] == payment["id"])
        wait_for(lambda d=payment["deal_id"], m=mine:
                 stack.ok("GET", f"/deals/{d}", user=me)["deal"]["paid"] == f"{m}.00",
                 timeout=60, message=f"deal {payment['deal_id']} to see its receipts")

    def notified() -> Counter:
        items = stack.ok("GET", "/notifications?limit=200", user=me)["items"]
        return Counter(n["body"] for n in items if n["kind"] == "payment_received")

    wait_for(lambda: sum(notified().values()) == len(booked), timeout=60,
             message="one notification per receipt")

    # comments: each acknowledged one in the feed once
    feed = [e for d in deals for e in stack.ok("GET", f"/deals/{d['id']}", user=me)["deal"]
            ["feed"] if e.get("kind") == "comment"]
    texts = Counter(e["text"] for e in feed)
    acked_texts = {body["text"] for _, body in comments.acked}
    assert acked_texts <= set(texts) and max(texts.values()) == 1
    assert len(feed) == len(comments.acked)

    # status changes: one history line per acknowledged move
    history = stack.ok("GET", f"/deals/{moving['id']}/history", user=me)
    moves = [h for h in history if h.get("field") == "status"]
    assert len(moves) == len(statuses.acked)

    print(f"\nchaos: receipts sent {receipts.sent}, acknowledged {len(receipts.acked)}, "
          f"booked {len(booked)}, retries {receipts.retries}; comments acknowledged "
          f"{len(comments.acked)}, in feeds {len(feed)}, retries {comments.retries}; "
          f"status moves acknowledged {len(statuses.acked)}, in history {len(moves)}, "
          f"retries {statuses.retries}; notifications {sum(notified().values())}; "
          f"processes alive {len(stack.procs)}/{len(processes())}")
