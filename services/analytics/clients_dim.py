"""The client dimension: each client's kind and group of companies as the clients service
announced them (``client_created``, ``client_updated``, ``client_group_changed``).

Events of one client may arrive out of order (several queues, redeliveries), so each field
keeps the version and the time of the event that set it and takes a value only from a
newer event: by the client's ``version`` when both events carry one, by the event's time
otherwise (``client_updated`` carries no version; at the same time the later applied
wins, so a versioned event is never refused against an unversioned one of its moment)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services.analytics.models import ClientGroupMember

_MISSING = object()


class Client(NamedTuple):
    kind: str | None
    group_id: int | None


def _at(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def told(data: Mapping[str, Any], field: str) -> Any:
    """What an event says of ``field``: its top-level value when present (null included),
    else the new value of ``changes[field]`` ({from, to} or [old, new]), else _MISSING."""
    if field in data:
        return data[field]
    change = (data.get("changes") or {}).get(field, _MISSING)
    if isinstance(change, Mapping):
        return change.get("to")
    if isinstance(change, (list, tuple)) and len(change) == 2:
        return change[1]
    return _MISSING


def _group(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


# one statement per field: insert the client, or take the value when the event is newer
_UPSERT = """
INSERT INTO client_group_members (client_id, {value}, {version}, {at}{other})
VALUES (:client_id, :value, :version, :at{other_values})
ON CONFLICT (client_id) DO UPDATE SET {value} = EXCLUDED.{value},
    {version} = EXCLUDED.{version}, {at} = EXCLUDED.{at}
WHERE CASE WHEN EXCLUDED.{version} > 0 AND client_group_members.{version} > 0
           THEN client_group_members.{version} < EXCLUDED.{version}
           ELSE client_group_members.{at} IS NULL OR client_group_members.{at} <= EXCLUDED.{at}
      END
"""
_COLUMNS = {"group": ("client_group_id", "version", "group_at"),
            "kind": ("kind", "kind_version", "kind_at")}


def _set(session: Session, client_id: int, field: str, value: Any, version: int,
         at: datetime) -> None:
    column, version_column, at_column = _COLUMNS[field]
    # the other field's version is NOT NULL: a new row starts it at 0
    other = _COLUMNS["kind" if field == "group" else "group"][1]
    session.execute(text(_UPSERT.format(value=column, version=version_column, at=at_column,
                                        other=f", {other}", other_values=", 0")),
                    {"client_id": client_id, "value": value, "version": version, "at": at})


def client_seen(session: Session, data: Mapping[str, Any], occurred_at: Any) -> None:
    """A client event: the kind and group it tells (a field it does not tell stays)."""
    client_id = int(data["client_id"])
    version = int(data.get("version") or 0)
    at = _at(occurred_at)
    group = told(data, "client_group_id")
    if group is not _MISSING:
        _set(session, client_id, "group", _group(group), version, at)
    kind = told(data, "kind")
    if kind is not _MISSING:
        _set(session, client_id, "kind", (str(kind)[:20] if kind else None), version, at)


def of(session: Session, client_ids: Iterable[int | None]) -> dict[int, Client]:
    """{client id: its kind and group} for the clients the dimension knows."""
    ids = sorted({int(c) for c in client_ids if c is not None})
    if not ids:
        return {}
    return {m.client_id: Client(m.kind, m.client_group_id) for m in session.scalars(
        select(ClientGroupMember).where(ClientGroupMember.client_id.in_(ids)))}
