"""Asking several services at once under one deadline.

A page sends every call before waiting for any; a service that is down or late leaves its
panel unavailable and the rest of the page still renders."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from gateway.rpc import Reply, RpcClient
from services.kit.errors import CrmError, RemoteTimeout, ServiceUnavailable

log = logging.getLogger("crm.gateway")


@dataclass
class Panel:
    """One service's answer for a page: ``data`` when it answered, else ``error``."""

    data: Any = None
    error: CrmError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


Call = tuple[str, str, tuple[Any, ...], dict[str, Any]]


def call(service: str, method: str, *args: Any, **kwargs: Any) -> Call:
    return (service, method, args, kwargs)


def send(rpc: RpcClient, calls: dict[str, Call], call_id: str | None = None,
         timeout: float | None = None) -> dict[str, Reply | CrmError]:
    sent: dict[str, Reply | CrmError] = {}
    for key, (service, method, args, kwargs) in calls.items():
        try:
            sent[key] = rpc.call_async(service, method, *args, call_id=call_id, timeout=timeout,
                                       **kwargs)
        except ServiceUnavailable as exc:
            sent[key] = exc
    return sent


def collect(sent: dict[str, Reply | CrmError], deadline: float) -> dict[str, Panel]:
    panels: dict[str, Panel] = {}
    for key, reply in sent.items():
        if isinstance(reply, CrmError):
            panels[key] = Panel(error=reply)
            continue
        try:
            panels[key] = Panel(data=reply.result(deadline))
        except CrmError as exc:
            panels[key] = Panel(error=exc)
        except Exception as exc:  # a bug in the remote service: log, show the panel as failed
            log.error("%s.%s failed: %s", reply.service, reply.method, exc)
            panels[key] = Panel(error=ServiceUnavailable(f"{reply.service} failed",
                                                         service=reply.service))
    return panels


def gather(rpc: RpcClient, calls: dict[str, Call], budget: float,
           call_id: str | None = None) -> dict[str, Panel]:
    deadline = time.monotonic() + budget
    return collect(send(rpc, calls, call_id, timeout=budget), deadline)


def unavailable(panel: Panel) -> bool:
    return isinstance(panel.error, (RemoteTimeout, ServiceUnavailable))
