"""An e-mail and a lead reach a deal's feed once, however often they are sent (a
redelivered message or a second accept returns the same line)."""
from __future__ import annotations


def test_the_same_message_and_the_same_lead_are_one_line_each(deals, directory):
    client = directory.client("ООО «Почта»")
    deal = deals.call("deals", "create_deal", {"name": "Письма", "client_id": client["id"]},
                      user_id=7)
    mail = {"message_id": "<m1@example.ru>", "direction": "in", "from": "a@example.ru",
            "to": "crm@example.ru", "subject": "Заказ", "text": "Нужно 10 штук"}
    first = deals.call("deals", "add_email", deal["id"], mail)
    again = deals.call("deals", "add_email", deal["id"], {**mail, "text": "другое"})
    assert again["id"] == first["id"] and again["text"] == "Нужно 10 штук"
    lead = {"id": 41, "source": "web_form", "name": "Ольга", "message": "Перезвоните",
            "utm": {"utm_source": "yandex"}}
    taken = deals.call("deals", "add_lead_line", deal["id"], lead)
    assert deals.call("deals", "add_lead_line", deal["id"], lead)["id"] == taken["id"]
    assert taken["kind"] == "lead" and taken["data"]["utm"] == {"utm_source": "yandex"}
    feed = deals.call("deals", "deal_page", deal["id"])["feed"]
    assert sorted(e["kind"] for e in feed) == ["email", "lead"]
