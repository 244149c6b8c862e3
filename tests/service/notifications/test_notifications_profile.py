"""Contact details and preferences are saved in one write: a refused part keeps both."""
from __future__ import annotations

import pytest

from services.kit.errors import ValidationError


def test_a_profile_with_bad_preferences_changes_neither_part(notifications, rpc):
    notifications()
    rpc.call("notifications", "set_recipient", 41, {"email": "old@crm.test"})
    with pytest.raises(ValidationError):
        rpc.call("notifications", "save_profile", 41, {"email": "new@crm.test"},
                 {"payment_received": ["carrier-pigeon"]})
    assert rpc.call("notifications", "get_profile", 41)["email"] == "old@crm.test"
    saved = rpc.call("notifications", "save_profile", 41, {"email": "new@crm.test"},
                     {"payment_received": ["app"]})
    assert saved["email"] == "new@crm.test"
    assert saved["preferences"]["payment_received"] == ["app"]
