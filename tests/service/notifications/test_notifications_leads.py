"""Leads reach people at once: the manager a new lead was assigned to, the heads when
nobody took it in time, the administrators when one sender floods the mailbox."""
from __future__ import annotations

from kombu import Connection, Producer

from services.kit.envelope import Envelope
from services.kit.messaging import event_exchange
from tests.support.infra import wait_until

MANAGER, HEAD = 5, 7


def test_a_new_lead_tells_its_manager_and_an_overdue_one_tells_the_heads(
        notifications, rpc, publish, smtp):
    notifications()
    rpc.call("notifications", "set_recipient", MANAGER, {"email": "anna@crm.test"})
    publish("intake", "lead_received", {
        "lead_id": 41, "source": "form", "source_name": "Форма на сайте",
        "who": "Ольга", "assignee_id": MANAGER, "respond_by": "2026-03-02T10:15:00+00:00"})
    [mail] = smtp.wait_for_messages(1)
    assert mail["To"] == "anna@crm.test" and "Ольга" in mail["Subject"]
    assert "https://crm.example/leads/41" in mail.get_content()
    publish("intake", "lead_overdue", {"lead_id": 41, "who": "Ольга",
                                        "assignee_id": MANAGER, "head_ids": [HEAD],
                                        "respond_by": "2026-03-02T10:15:00+00:00"})
    told = wait_until(lambda: rpc.call("notifications", "list_for_user", HEAD)["items"],
                      message="the head told in the app")
    assert told[0]["kind"] == "lead_overdue" and told[0]["link"] == "/leads/41"
    manager = rpc.call("notifications", "list_for_user", MANAGER)["items"]
    assert [n["kind"] for n in manager] == ["new_lead"]


def test_a_burst_of_new_leads_tells_each_manager_of_each_of_their_leads_once(
        notifications, rpc, amqp_uri):
    """Leads come in bursts from the website and are consumed many to a transaction: each
    assigned lead is one notice for its own manager, a lead nobody was assigned to tells
    nobody, and a delivery repeated in the burst counts once."""
    notifications()
    expected = {MANAGER: [], HEAD: []}
    events = []
    for lead_id in range(100, 130):
        assignee = (MANAGER, HEAD, None)[lead_id % 3]
        events.append(Envelope.new("lead_received", {
            "lead_id": lead_id, "source": "form", "source_name": "Форма", "who": f"Лид {lead_id}",
            "assignee_id": assignee, "respond_by": "2026-03-02T10:15:00+00:00"}))
        if assignee is not None:
            expected[assignee].append(f"/leads/{lead_id}")
    with Connection(amqp_uri) as conn:  # one burst: the consumer takes them in batches
        exchange = event_exchange("intake")
        producer = Producer(conn.default_channel, exchange=exchange)
        exchange(producer.channel).declare()
        for envelope in [*events, events[0], events[1]]:
            producer.publish(envelope.to_dict(), routing_key="lead_received",
                             serializer="json", delivery_mode=2)

    def told(user_id):
        return sorted(n["link"] for n in rpc.call("notifications", "list_for_user", user_id,
                                                  limit=100)["items"])

    for user_id, links in expected.items():
        wait_until(lambda user_id=user_id, links=links: len(told(user_id)) >= len(links),
                   message=f"user {user_id} told")
        assert told(user_id) == sorted(links)
        assert {n["kind"] for n in rpc.call("notifications", "list_for_user", user_id,
                                            limit=100)["items"]} == {"new_lead"}
