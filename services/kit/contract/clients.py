"""The client list's contract (services/clients/README.md, ``search_clients``): its
columns, filters and limits, and the check of a user's chosen columns."""
from __future__ import annotations

from services.kit.errors import ValidationError
from services.kit.parse import shown

LIST_COLUMNS = ("number", "name", "kind", "inn", "city", "manager", "phone", "email",
                "address", "website", "created_at", "last_contact_at")
DEFAULT_COLUMNS = ("name", "inn", "city", "manager", "phone", "last_contact_at")
FILTERS = ("name", "inn", "phone", "manager_id", "kind", "city", "created_from",
           "created_to", "neglected_days", "no_open_reminder", "ids", "group_id", "segment")
# ``ids``: only these clients (the gateway's slice by another context's figure, e.g. the
# RFM segment analytics knows); at most MAX_IDS of them
MAX_IDS = 50_000
MAX_PER_PAGE = 200
MAX_NEGLECTED_DAYS = 3650


def validate_columns(value: object) -> list[str]:
    """The columns a user chose to see, in their order: known, unique, with the name.

    The name is the link to the client page, so it cannot be hidden.
    """
    if not isinstance(value, (list, tuple)) or not value:
        raise ValidationError("columns: choose at least one column", field="columns",
                              key="columns.none")
    columns: list[str] = []
    for item in value:
        if item not in LIST_COLUMNS:
            raise ValidationError(f"columns: unknown column {shown(item)}", field="columns",
                                  key="columns.unknown", params={"column": shown(item)})
        if item in columns:
            raise ValidationError(f"columns: {item} is chosen twice", field="columns",
                                  key="columns.twice", params={"column": item})
        columns.append(item)
    if "name" not in columns:
        raise ValidationError("columns: the name column cannot be hidden", field="columns",
                              key="columns.name_hidden")
    return columns


def stored_columns(value: object) -> list[str]:
    """A user's stored choice, or the default when it is missing or no longer valid
    (a column renamed in a later version must not break the page)."""
    try:
        return validate_columns(value)
    except ValidationError:
        return list(DEFAULT_COLUMNS)
