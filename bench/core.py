"""The skeleton's figures: one RPC round trip, and the deal page through the gateway
(five services asked in parallel) — beside a bare AMQP request/reply, the floor."""
from __future__ import annotations

import uuid
from datetime import date

import requests
from kombu import Connection, Consumer, Exchange, Producer, Queue

from bench.report import compare, show, timed
from gateway.rpc import RpcClient
from tests.support.stack import Stack


def bare_amqp_round_trip(uri: str, repeat: int) -> list[float]:
    """Publish to a queue we consume ourselves: the broker's own round trip."""
    exchange = Exchange("bench", type="direct", auto_delete=True)
    queue = Queue(f"bench-{uuid.uuid4().hex}", exchange, routing_key="ping", exclusive=True)
    with Connection(uri) as conn:
        got: list[object] = []
        producer = Producer(conn.default_channel, exchange=exchange)
        with Consumer(conn.channel(), queues=[queue], callbacks=[lambda b, m: got.append(b)],
                      accept=["json"], no_ack=True):

            def once() -> None:
                got.clear()
                producer.publish({"ping": 1}, routing_key="ping", serializer="json",
                                 declare=[queue])
                while not got:
                    conn.drain_events(timeout=5)

            return timed(once, repeat)


def page_split(stack: Stack, path: str, repeat: int) -> tuple[list[float], dict[str, list[float]]]:
    """Milliseconds of ``repeat`` deal pages and, per phase, what the gateway's
    ``Server-Timing`` header says it spent (gateway/timing.py)."""
    phases: dict[str, list[float]] = {}
    headers = {"Authorization": f"Bearer {stack.token()}"}

    def once() -> None:
        answer = requests.get(f"{stack.url}/api/v1{path}", headers=headers, timeout=10)
        answer.raise_for_status()
        for part in answer.headers.get("Server-Timing", "").split(","):
            name, _, duration = part.strip().partition(";dur=")
            if duration:
                phases.setdefault(name, []).append(float(duration))

    samples = timed(once, repeat)
    return samples, {name: values[-repeat:] for name, values in phases.items()}


def run(stack: Stack) -> None:
    repeat = 500
    floor = bare_amqp_round_trip(stack.env["AMQP_URI"], repeat)
    show("AMQP publish+consume (the floor)", floor)
    rpc = RpcClient(stack.env["AMQP_URI"], timeout=5, name="bench")
    try:
        health = timed(lambda: rpc.call("deals", "health"), repeat)
        show("RPC round trip gateway client -> deals.health", health)
        show("RPC deals.list_statuses (one query)",
             timed(lambda: rpc.call("deals", "list_statuses"), repeat))
    finally:
        rpc.close()
    compare("one RPC", health, floor, "AMQP", ratio=2)
    client = stack.ok("POST", "/clients", json={"name": "Бенч", "inn": "7707083893"})
    stack.ok("POST", f"/clients/{client['id']}/contacts",
             json={"name": "Контакт", "phones": ["+79160000000"]})
    deal = stack.ok("POST", "/deals", json={"name": "Бенч", "client_id": client["id"]})
    stack.ok("POST", f"/deals/{deal['id']}/payments",
             json={"amount": "100.00", "due_date": str(date.today())})
    page, phases = page_split(stack, f"/deals/{deal['id']}", 300)
    show("deal page JSON through the gateway (5 services)", page)
    for name, spent in phases.items():
        show(f"  of which, in the gateway: {name}", spent)
    compare("deal page JSON", page, health, "one RPC", goal_p50=10, goal_p99=30)
