"""E-mail and lead lines of the deal feed: what deals accepts from intake."""
from __future__ import annotations

import pytest

from services.deals import domain
from services.kit.errors import ValidationError


def test_an_email_line_needs_its_message_id_and_direction() -> None:
    with pytest.raises(ValidationError) as no_id:
        domain.validate_email_line({"direction": "in"})
    assert no_id.value.details["field"] == "message_id"
    with pytest.raises(ValidationError) as no_direction:
        domain.validate_email_line({"message_id": "<a@x>"})
    assert no_direction.value.details["field"] == "direction"


def test_an_outbound_line_starts_queued_and_an_inbound_one_received() -> None:
    out = domain.validate_email_line({"message_id": "<a@x>", "direction": "out"})
    inbound = domain.validate_email_line({"message_id": "<b@x>", "direction": "in"})
    assert (out["data"]["status"], inbound["data"]["status"]) == ("queued", "received")


def test_the_same_message_id_is_the_same_feed_key_and_fits_the_column() -> None:
    long_id = "<" + "x" * 900 + "@example>"
    assert domain.email_ref(long_id) == domain.email_ref(" " + long_id + " ")
    assert len(domain.email_ref(long_id)) <= 100


def test_a_lead_line_keeps_who_wrote_and_where_from() -> None:
    line = domain.validate_lead_line({"id": 7, "source": "form", "name": "Ольга",
                                      "message": "Счёт", "utm": {"utm_source": "ya"}})
    assert line["lead_id"] == 7 and line["text"] == "Счёт"
    assert line["data"]["utm"] == {"utm_source": "ya"}
    with pytest.raises(ValidationError):
        domain.validate_lead_line({"name": "без id"})
