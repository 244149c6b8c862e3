"""Leads reach people at once: the manager a new lead was assigned to, the heads when
nobody took it in time, the administrators when one sender floods the mailbox."""
from __future__ import annotations

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
