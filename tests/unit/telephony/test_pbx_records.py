from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.kit.errors import ValidationError
from services.telephony.pbx.records import CallRecord, CallUpdate

MSK = timezone(timedelta(hours=3))


def _record(**overrides: object) -> CallRecord:
    values: dict[str, object] = {
        "provider": "asterisk", "provider_call_id": "1700000000.41", "direction": "inbound",
        "our_line": "101", "other_number": "79161234567",
        "started_at": datetime(2023, 11, 15, 1, 13, 20, tzinfo=MSK),
        "answered_at": datetime(2023, 11, 15, 1, 13, 26, tzinfo=MSK),
        "ended_at": datetime(2023, 11, 15, 1, 14, 31, tzinfo=MSK),
        "duration_seconds": 65, "outcome": "answered", "recording_ref": None,
    }
    values.update(overrides)
    return CallRecord(**values)  # type: ignore[arg-type]


def test_record_times_are_normalised_to_utc() -> None:
    record = _record()
    assert record.started_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert record.started_at.utcoffset() == timedelta(0)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        _record(started_at=datetime(2023, 11, 14, 22, 13, 20))  # noqa: DTZ001 - on purpose
    assert err.value.field == "started_at"


@pytest.mark.parametrize(("field", "value"), [
    ("provider", "sipuni"), ("direction", "sideways"), ("outcome", "maybe"),
    ("duration_seconds", -1), ("provider_call_id", ""),
])
def test_bad_values_name_their_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as err:
        _record(**{field: value})
    assert err.value.field == field


def test_update_changes_skip_unknown_fields() -> None:
    update = CallUpdate(provider="zadarma", provider_call_id="in_1", stage="recording",
                        recording_ref="rec-1")
    assert update.changes() == {"recording_ref": "rec-1"}


def test_record_as_update_carries_every_field() -> None:
    update = _record(recording_ref="a.wav").to_update()
    assert update.stage == "ended"
    assert update.changes()["duration_seconds"] == 65
    assert update.changes()["recording_ref"] == "a.wav"
