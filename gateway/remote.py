"""How views call services: the request's id travels as the call id."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import current_app, g

from gateway.aggregate import Call, Panel, collect, send
from gateway.idempotency import service_key
from gateway.rpc import RpcClient


def rpc() -> RpcClient:
    return current_app.extensions["services"].rpc


def remote(service: str, method: str, *args: Any, **kwargs: Any) -> Any:
    if g.get("user") is not None:
        # who acts: the services apply the permission matrix to it
        kwargs.setdefault("actor", {"id": g.user.id, "roles": list(g.user.roles)})
    key = service_key()
    if key is not None:
        kwargs["idempotency_key"] = key  # the service answers a repeat from its record
    return rpc().call(service, method, *args, call_id=f"gateway.{g.request_id}", **kwargs)


def remote_many(calls: dict[str, Call], budget: float | None = None,
                meanwhile: Callable[[], Any] | None = None) -> dict[str, Panel]:
    """Every call sent before any is waited for.  ``meanwhile`` runs after sending and
    before waiting: the page's own database lookups overlap the services' work instead of
    adding to it (the budget counts from the sending, as before)."""
    budget = budget or float(current_app.config["CRM"].get("PAGE_DEADLINE", 2.0))
    deadline = time.monotonic() + budget
    sent = send(rpc(), calls, f"gateway.{g.request_id}", timeout=budget)
    if meanwhile is not None:
        meanwhile()
    return collect(sent, deadline)


def user_names() -> dict[int, str]:
    from sqlalchemy import select

    from gateway.models import User

    # two columns, not whole users: pages ask this on every view
    return {uid: name for uid, name in g.db.execute(select(User.id, User.full_name))}
