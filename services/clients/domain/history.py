"""Field-level change history (C3, U2): the record a change is compared on, and how
values are written into the history table."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.clients.domain.clients import diff_fields, merge_plan
from services.clients.domain.requisites import BANK_FIELDS, KIND_FIELDS

# Client fields that are not requisites; requisites are kept under "requisites.<key>" so
# that a legal entity's full name ("requisites.name") never clashes with the display name.
RECORD_FIELDS = ("name", "kind", "website", "address", "city", "manager_id")
REQUISITES_PREFIX = "requisites."


def client_record(fields: Mapping[str, Any], requisites: Mapping[str, Any]) -> dict[str, Any]:
    """The flat record two versions of a client are compared on."""
    record = {key: fields.get(key) for key in RECORD_FIELDS}
    record.update({REQUISITES_PREFIX + key: value for key, value in requisites.items()})
    return record


def as_text(value: object) -> str | None:
    """A value as the history table keeps it: text, lists joined, empty as None."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


def contact_summary(contact: Mapping[str, Any]) -> str:
    """A contact in one history line: "Пётр Сидоров (директор): +79161234567, petr@x.ru"."""
    reach = [*(contact.get("phones") or ()), *(contact.get("emails") or ())]
    position = f" ({contact['position']})" if contact.get("position") else ""
    return f"{contact.get('name')}{position}" + (f": {', '.join(reach)}" if reach else "")


def changes(old: Mapping[str, Any], new: Mapping[str, Any]
            ) -> list[tuple[str, str | None, str | None]]:
    """(field, old text, new text) for each field that changed, in record order."""
    return [(key, as_text(before), as_text(after))
            for key, before, after in diff_fields(old, new)
            if as_text(before) != as_text(after)]


def change_map(rows: Iterable[tuple[str, str | None, str | None]]) -> dict[str, list[Any]]:
    """The ``changes`` of a client_updated event: {field: [old, new]}."""
    return {field: [before, after] for field, before, after in rows}


def merged_record(survivor: Mapping[str, Any], other: Mapping[str, Any], kind: str
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the survivor's record, its requisites) after merging ``other`` into it: per field
    the survivor's non-empty value wins (``merge_plan``), only requisites of the
    survivor's kind are kept, and the bank block is taken whole from one side."""
    own_keys = {REQUISITES_PREFIX + key for key in KIND_FIELDS[kind]}
    plan = {key: value for key, value in merge_plan(survivor, other).items()
            if not key.startswith(REQUISITES_PREFIX) or key in own_keys}
    plan["kind"] = kind
    if any(survivor.get(REQUISITES_PREFIX + key) for key in BANK_FIELDS):
        # an account is checked against its own bank's BIK: never mix two banks
        plan.update({REQUISITES_PREFIX + key: survivor.get(REQUISITES_PREFIX + key)
                     for key in BANK_FIELDS if REQUISITES_PREFIX + key in own_keys})
    requisites = {key[len(REQUISITES_PREFIX):]: value for key, value in plan.items()
                  if key.startswith(REQUISITES_PREFIX)}
    return plan, requisites
