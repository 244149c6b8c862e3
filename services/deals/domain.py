"""Pure rules of deals: no nameko, no SQL."""
from __future__ import annotations

from typing import Any

from services.kit.errors import ValidationError


def validate_new_deal(data: dict[str, Any]) -> dict[str, Any]:
    name = str(data.get("name") or "").strip()
    if not name:
        raise ValidationError("name: a deal needs a name", field="name")
    if len(name) > 500:
        raise ValidationError("name: at most 500 characters", field="name")
    try:
        client_id = int(data.get("client_id"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValidationError("client_id: choose the client of the deal", field="client_id") from None
    return {"name": name, "client_id": client_id, "status": data.get("status") or "new",
            "manager_id": data.get("manager_id")}


def copied_contacts(client_contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """D7: a new deal starts with copies of the client's contacts; the first is main."""
    return [{"contact_id": c["id"], "name": c["name"], "phones": ", ".join(c.get("phones", [])),
             "is_main": i == 0} for i, c in enumerate(client_contacts)]


def check_version(current: int, expected: int | None) -> bool:
    """A write that names a version must be based on the current one (no silent overwrite)."""
    return expected is None or int(expected) == current
