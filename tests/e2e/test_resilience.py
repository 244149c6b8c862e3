"""Nothing is lost when a service or RabbitMQ restarts: events wait in durable queues and
outboxes, and every process reconnects by itself."""
from __future__ import annotations

import subprocess
from datetime import date

import pytest
from sqlalchemy import create_engine, text

from tests.support import infra
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def test_events_published_while_the_consumer_is_down_arrive_after_a_broker_restart(stack: Stack):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Надёжность»", "inn": "7707083893"})
    deal = stack.ok("POST", "/deals", json={"name": "Без потерь", "client_id": client["id"]})
    # payments must know the deal from deal_created before deals goes (else it asks deals
    # whose deal this is, and no one answers): the event is published just after the commit
    engine = create_engine(f"{infra.PG_BASE}/{stack.prefix}_payments")
    try:
        def known() -> bool:
            with engine.connect() as conn:
                return conn.execute(text("SELECT 1 FROM deal_refs WHERE deal_id = :d"),
                                    {"d": deal["id"]}).first() is not None
        wait_for(known, message="payments to learn of the deal")
    finally:
        engine.dispose()
    stack.kill("deals")  # the consumer of budget_changed is gone, without a goodbye
    try:
        stack.ok("POST", f"/deals/{deal['id']}/payments",
                 json={"amount": "777.00", "due_date": str(date.today())})
        rabbitmqctl("stop_app")
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
    finally:
        stack.start("deals")
    stack.wait_healthy(timeout=90)
    wait_for(lambda: stack.ok("GET", f"/deals/{deal['id']}")["deal"]["amount"] == "777.00",
             timeout=30, message="budget_changed to reach deals after the restart")
    # the gateway reconnected too: a new write goes through end to end
    payment = stack.ok("POST", f"/deals/{deal['id']}/payments",
                       json={"amount": "3.00", "due_date": str(date.today())})
    assert payment["amount"] == "3.00"
    wait_for(lambda: stack.ok("GET", f"/deals/{deal['id']}")["deal"]["amount"] == "780.00",
             message="the next budget_changed")
