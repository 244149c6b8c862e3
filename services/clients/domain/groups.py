"""Groups of companies (holdings) and relations between clients: the rules.  Pure.

A relation is stored once, in one direction: ``parent`` (``client_id``'s parent is
``related_id``) or ``partner`` (symmetric).  "B is a subsidiary of A" is stored as "B's
parent is A", so a parent and a subsidiary can never disagree."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.kit import parse
from services.kit.errors import ValidationError

KINDS = ("parent", "subsidiary", "partner")
GROUP_NAME_LIMIT = 300


@dataclass(frozen=True)
class Link:
    """A relation as stored: ``child`` → ``parent`` for parent/subsidiary, or two
    partners (the lower id first)."""

    client_id: int
    related_id: int
    kind: str  # "parent" | "partner"


def group_name(value: object) -> str:
    return parse.text(value, "name", limit=GROUP_NAME_LIMIT)


def relation(client_id: object, related_id: object, kind: object) -> Link:
    """What "``related_id`` is the ``kind`` of ``client_id``" is stored as."""
    me = parse.identifier(client_id, "client_id")
    other = parse.identifier(related_id, "related_id")
    chosen = parse.choice(kind, "kind", KINDS)
    if me == other:
        raise ValidationError("Клиент не может быть связан сам с собой.", "related_id",
                              key="relation.self")
    if chosen == "parent":      # other is my parent
        return Link(me, other, "parent")
    if chosen == "subsidiary":  # other is my subsidiary: I am its parent
        return Link(other, me, "parent")
    return Link(min(me, other), max(me, other), "partner")


def would_cycle(link: Link, parents: Mapping[int, Iterable[int]]) -> bool:
    """Whether a new parent link closes a loop (A's parent B whose parent is A): walk up
    from the new parent."""
    if link.kind != "parent":
        return False
    seen: set[int] = set()
    todo = [link.related_id]
    while todo:
        current = todo.pop()
        if current == link.client_id:
            return True
        if current in seen:
            continue
        seen.add(current)
        todo.extend(parents.get(current, ()))
    return False


def view(client_id: int, links: Iterable[tuple[int, int, int, str]]) -> list[dict[str, Any]]:
    """A client's relations as its page shows them: (relation id, client, related, kind)
    rows seen from ``client_id`` — its parents, subsidiaries (divisions) and partners."""
    out = []
    for rid, child, parent, kind in links:
        if kind == "partner":
            other, shown = (parent if child == client_id else child), "partner"
        elif child == client_id:
            other, shown = parent, "parent"
        else:
            other, shown = child, "subsidiary"
        out.append({"id": rid, "client_id": other, "kind": shown})
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(out, key=lambda r: (order[r["kind"]], r["client_id"]))
