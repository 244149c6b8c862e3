"""Who may change what: a matrix of role × resource → scope, enforced in the services.

Scopes: ``all`` (any record), ``own`` (records whose owners include the user: the manager
of a deal or client; a record with no owner counts as anyone's), ``none``.  A user with
several roles gets the widest scope of them.
The gateway sends the acting user on every call as ``actor={"id": .., "roles": [..]}``;
a call without an actor comes from another service or a maintenance script, which the
matrix does not restrict.  The matrix is configuration (``PERMISSIONS`` in
deploy/config/common.yaml) so an installation can change a role's reach.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.kit.errors import Forbidden

RESOURCES = ("deals", "clients", "payments", "receipts")
SCOPES = ("none", "own", "all")
KWARG = "actor"

# Managers read everything but change only their own deals, clients and payments; heads
# and administrators change all; the accountant plans and records money on any deal.
DEFAULT_MATRIX: dict[str, dict[str, str]] = {
    "manager": {"deals": "own", "clients": "own", "payments": "own", "receipts": "own"},
    "head": dict.fromkeys(RESOURCES, "all"),
    "admin": dict.fromkeys(RESOURCES, "all"),
    "accountant": {"deals": "none", "clients": "none", "payments": "all", "receipts": "all"},
}


def matrix_from(config: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The configured matrix, each role's entries over the default; unknown scopes refused."""
    merged = {role: dict(row) for role, row in DEFAULT_MATRIX.items()}
    for role, row in (config.get("PERMISSIONS") or {}).items():
        for resource, scope in (row or {}).items():
            if resource not in RESOURCES or scope not in SCOPES:
                raise ValueError(f"PERMISSIONS.{role}.{resource}: {scope!r} is not one of "
                                 f"{', '.join(SCOPES)}")
            merged.setdefault(role, dict.fromkeys(RESOURCES, "none"))[resource] = scope
    return merged


def scope_of(matrix: Mapping[str, Mapping[str, str]], roles: Iterable[str], resource: str) -> str:
    scopes = [matrix.get(role, {}).get(resource, "none") for role in roles]
    return max(scopes, key=SCOPES.index, default="none")


def allowed(matrix: Mapping[str, Mapping[str, str]], actor: Mapping[str, Any] | None,
            resource: str, owners: Iterable[int | None]) -> bool:
    if actor is None:
        return True
    scope = scope_of(matrix, actor.get("roles") or (), resource)
    owners = set(owners)
    # a record nobody owns yet is anyone's to pick up
    return scope == "all" or (scope == "own" and (actor.get("id") in owners
                                                  or owners <= {None}))


def check(matrix: Mapping[str, Mapping[str, str]], actor: Mapping[str, Any] | None,
          resource: str, owners: Iterable[int | None], what: str) -> None:
    """Raise Forbidden unless the actor may change ``what`` (a record of ``resource``)."""
    owners = list(owners)
    if not allowed(matrix, actor, resource, owners):
        raise Forbidden(f"{what}: you may change only your own {resource}",
                        key=f"permission.{resource}", resource=resource)


def require_roles(actor: Mapping[str, Any] | None, roles: Iterable[str], what: str) -> None:
    """Raise Forbidden unless the actor has one of ``roles`` (a report for heads only); a
    call without an actor (another service, a script) is not restricted."""
    if actor is None:
        return
    if not set(actor.get("roles") or ()) & set(roles):
        raise Forbidden(f"{what}: only for {', '.join(sorted(roles))}",
                        key="permission.heads_only")
