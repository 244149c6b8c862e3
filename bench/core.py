"""The skeleton's figures: one RPC round trip, and the deal page through the gateway
(five services asked in parallel) — beside a bare AMQP request/reply, the floor."""
from __future__ import annotations

import uuid
from datetime import date

from kombu import Connection, Consumer, Exchange, Producer, Queue

from bench.report import show, timed
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


def run(stack: Stack) -> None:
    repeat = 500
    show("AMQP publish+consume (the floor)", bare_amqp_round_trip(stack.env["AMQP_URI"], repeat))
    rpc = RpcClient(stack.env["AMQP_URI"], timeout=5, name="bench")
    try:
        show("RPC round trip gateway client -> deals.health",
             timed(lambda: rpc.call("deals", "health"), repeat))
        show("RPC deals.list_statuses (one query)",
             timed(lambda: rpc.call("deals", "list_statuses"), repeat))
    finally:
        rpc.close()
    client = stack.ok("POST", "/clients", json={"name": "Бенч", "inn": "7707083893"})
    stack.ok("POST", f"/clients/{client['id']}/contacts",
             json={"name": "Контакт", "phones": ["+79160000000"]})
    deal = stack.ok("POST", "/deals", json={"name": "Бенч", "client_id": client["id"]})
    stack.ok("POST", f"/deals/{deal['id']}/payments",
             json={"amount": "100.00", "due_date": str(date.today())})
    show("deal page JSON through the gateway (5 services)",
         timed(lambda: stack.ok("GET", f"/deals/{deal['id']}"), 300))
