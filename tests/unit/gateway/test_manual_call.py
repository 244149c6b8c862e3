"""A call logged by hand (from a mobile) becomes the API's record_call data."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.sections.telephony import manual_call
from services.kit.errors import ValidationError

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 2, 15, 0, tzinfo=MSK)


def test_an_outgoing_mobile_call_of_three_minutes_is_answered_and_starts_in_local_time():
    data = manual_call({"other_number": "8 915 777-33-21", "started_at": "2026-12-02T14:30",
                        "minutes": "3"}, "+79990000000", MSK, NOW)
    assert data == {"direction": "outbound", "from": "+79990000000", "to": "8 915 777-33-21",
                    "started_at": "2026-12-02T14:30:00+03:00",
                    "ended_at": "2026-12-02T14:33:00+03:00",
                    "answered_at": "2026-12-02T14:30:00+03:00", "outcome": "answered"}


def test_an_incoming_call_without_minutes_is_missed_and_starts_now():
    data = manual_call({"direction": "inbound", "other_number": "+74951234567",
                        "our_number": "+74950000000"}, "мобильный", MSK, NOW)
    assert (data["from"], data["to"]) == ("+74951234567", "+74950000000")
    assert data["outcome"] == "missed" and "answered_at" not in data
    assert data["started_at"] == data["ended_at"] == NOW.isoformat()


@pytest.mark.parametrize(("form", "field"), [
    ({"minutes": "три"}, "minutes"), ({"minutes": "-1"}, "minutes"),
    ({"minutes": "NaN"}, "minutes"), ({"started_at": "вчера"}, "started_at"),
])
def test_bad_input_names_its_field(form, field):
    with pytest.raises(ValidationError) as exc:
        manual_call({"other_number": "+74951234567", **form}, "+7", MSK, NOW)
    assert exc.value.field == field
