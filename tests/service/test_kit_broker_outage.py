"""A service rides out the broker going away: the reply it could not send is lost (the
caller's deadline covers that), and it answers again once the broker is back."""
from __future__ import annotations

import requests
from eventlet.event import Event

from gateway.rpc import RpcClient
from services.kit.entrypoints import rpc
from services.kit.errors import RemoteTimeout, ServiceUnavailable
from tests.support import infra

STARTED = Event()
RELEASE = Event()


class Holder:
    name = "holder_standin"

    @rpc
    def hold(self) -> str:
        STARTED.send(True)
        RELEASE.wait()
        return "held"

    @rpc
    def ping(self) -> str:
        return "pong"


def recreate(vhost: str) -> None:
    requests.put(f"{infra.RABBIT_API}/vhosts/{vhost}", auth=infra.AUTH, timeout=10)
    requests.put(f"{infra.RABBIT_API}/permissions/{vhost}/guest", auth=infra.AUTH, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()


def test_a_reply_that_cannot_be_sent_does_not_kill_the_service(start_service, amqp_uri):
    container = start_service(Holder)
    vhost = amqp_uri.rsplit("/", 1)[1]
    client = RpcClient(amqp_uri, timeout=2, name="outage")
    try:
        client.call_async("holder_standin", "hold", timeout=30)
        STARTED.wait()
        infra.delete_vhost(vhost)  # every connection of the vhost drops, new ones are refused
        RELEASE.send(True)  # the reply now has nowhere to go
        recreate(vhost)

        def answers() -> bool:
            try:
                return client.call("holder_standin", "ping", timeout=1) == "pong"
            except (RemoteTimeout, ServiceUnavailable):
                return False

        infra.wait_until(answers, timeout=30, interval=0.2,
                         message="the service to answer after the outage")
        assert not container._died.ready()
    finally:
        client.close()
