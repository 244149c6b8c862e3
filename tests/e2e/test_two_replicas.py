"""Two replicas of every service on one stack: RPC load is shared between them, timers
claim each piece of work once, and each event is applied once per service."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from deploy.procfile import processes
from deploy.run import start_process
from services.kit.config import SERVICES
from tests.support import infra
from tests.support.stack import PASSWORD, Stack, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def doubled() -> Iterator[Stack]:
    running = Stack().up()
    try:
        for name in SERVICES:
            log = open(running.logs / f"{running.prefix}-{name}-2.log", "ab")  # noqa: SIM115
            running.procs[f"{name}-2"] = start_process(processes()[name], running.env, log)
        vhost = running.env["AMQP_URI"].rsplit("/", 1)[1]

        def consumers(queue: str) -> int:
            response = requests.get(f"{infra.RABBIT_API}/queues/{vhost}/{queue}",
                                    auth=infra.AUTH, timeout=5)
            return int(response.json().get("consumers", 0)) if response.ok else 0

        wait_for(lambda: all(consumers(f"rpc-{name}") == 2 for name in SERVICES), timeout=60,
                 message="two consumers on every service's RPC queue")
        yield running
    finally:
        running.down()


def calls_logged(stack: Stack, log_name: str, entrypoint: str) -> int:
    path = Path(stack.logs) / f"{stack.prefix}-{log_name}.log"
    count = 0
    for line in path.read_text(errors="replace").splitlines():
        start = line.find("{")
        if start >= 0 and '"entrypoint"' in line:
            try:
                count += json.loads(line[start:]).get("entrypoint") == entrypoint
            except ValueError:
                pass
    return count


def test_two_replicas_share_rpc_apply_each_event_once_and_claim_timers_once(doubled: Stack):
    stack = doubled
    username = f"twins{uuid.uuid4().hex[:6]}"
    stack.ok("POST", "/admin/users", user="admin", json={
        "username": username, "full_name": "Два Реплики", "password": PASSWORD,
        "roles": ["manager"]})
    me = stack.ok("GET", "/me", user=username)
    client = stack.ok("POST", "/clients", user=username, json={"name": "ООО «Двое»",
                                                               "kind": "person"})
    deal = stack.ok("POST", "/deals", user=username, json={"name": "Двое",
                                                            "client_id": client["id"]})
    payment = stack.ok("POST", f"/deals/{deal['id']}/payments", user=username, json={
        "amount": "100.00", "due_date": str(datetime.now(UTC).date() + timedelta(days=5))})

    for _ in range(30):
        stack.ok("GET", f"/deals/{deal['id']}", user=username)
    shared = (calls_logged(stack, "deals", "deal_page"), calls_logged(stack, "deals-2",
                                                                       "deal_page"))
    assert sum(shared) >= 30 and min(shared) > 0, shared

    for n in range(10):
        stack.ok("POST", f"/payments/{payment['id']}/receipts", user=username,
                 json={"amount": "1.00", "comment": f"twin {n}"})
    wait_for(lambda: stack.ok("GET", f"/deals/{deal['id']}", user=username)["deal"]["paid"]
             == "10.00", timeout=30, message="every receipt applied in deals")

    def notified(kind: str) -> int:
        items = stack.ok("GET", "/notifications?limit=200", user=username)["items"]
        return sum(1 for n in items if n["kind"] == kind)

    wait_for(lambda: notified("payment_received") == 10, timeout=30,
             message="one notification per receipt")

    due = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    reminders = [stack.ok("POST", f"/deals/{deal['id']}/reminders", user=username,
                          json={"text": f"Позвонить {n}", "due_at": due,
                                "assignee_id": me["id"]})["id"] for n in range(5)]
    engine = create_engine(f"{infra.PG_BASE}/{stack.prefix}_deals")
    try:
        def announced(ids: list[int]) -> int:
            with engine.connect() as conn:
                return int(conn.execute(text(
                    "SELECT count(*) FROM outbox WHERE type = 'reminder_due' "
                    "AND (data->>'reminder_id')::bigint = ANY(:ids)"), {"ids": ids}).scalar())

        wait_for(lambda: announced(reminders) >= 5, timeout=30, message="reminders due")
        # a later reminder coming due proves both timers ticked again meanwhile
        later = stack.ok("POST", f"/deals/{deal['id']}/reminders", user=username,
                         json={"text": "Ещё", "due_at": due, "assignee_id": me["id"]})["id"]
        wait_for(lambda: announced([later]) == 1, timeout=30, message="the later reminder")
        assert announced(reminders) == 5
    finally:
        engine.dispose()
    wait_for(lambda: notified("reminder_due") == 6, timeout=30,
             message="one reminder notification each")
    dead = [name for name, proc in stack.procs.items() if proc.poll() is not None]
    assert dead == []
    print(f"\nreplicas: deal_page calls per deals replica {shared}; receipts 10 -> "
          f"notifications {notified('payment_received')}; reminders 6 -> announced once each")
