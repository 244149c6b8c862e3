"""How a service sends its RPC replies (services/kit/entrypoints.py, ``Replies``): to the
gateway (whose reply queue is exclusive) on one connection kept open, without publisher
confirms; a connection the broker closed is replaced before the next reply; to nameko's
proxies (durable reply queues) as nameko does, confirmed; a result that cannot be encoded
still answers, as an error."""
from __future__ import annotations

from typing import Any

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from services.kit.db import readable
from services.kit.entrypoints import SturdyRpc, SturdyRpcConsumer, rpc
from services.kit.errors import RemoteFailure, ValidationError
from tests.support import infra


class Answering:
    name = "answering_standin"

    @rpc
    def echo(self, value: Any) -> Any:
        return value

    @rpc
    def refuse(self) -> None:
        raise ValidationError("too small", field="amount", key="min", params={"min": 1})

    @SturdyRpc.decorator
    def unencodable(self) -> Any:
        return object()


def replies_of(container: Any) -> Any:
    consumer = next(e for e in container.subextensions if isinstance(e, SturdyRpcConsumer))
    return consumer.replies


def test_replies_share_one_connection_without_publisher_confirms(start_service, rpc):
    container = start_service(Answering)
    assert rpc.call("answering_standin", "echo", 0) == 0
    connection = replies_of(container)._connection
    assert [rpc.call("answering_standin", "echo", n) for n in range(30)] == list(range(30))
    assert replies_of(container)._connection is connection
    # a reply goes to a non-durable reply queue: a confirm would make nothing durable
    assert connection.connection.confirm_publish is False


def test_errors_still_arrive_typed_with_their_details(start_service, rpc):
    start_service(Answering)
    with pytest.raises(ValidationError) as refused:
        rpc.call("answering_standin", "refuse")
    assert (refused.value.field, refused.value.key, refused.value.params) == \
        ("amount", "min", {"min": 1})


def test_a_result_that_cannot_be_encoded_answers_as_an_error(start_service, rpc):
    container = start_service(Answering)
    with pytest.raises(RemoteFailure) as failed:
        rpc.call("answering_standin", "unencodable")
    assert failed.value.exc_type == "UnserializableValueError"
    assert rpc.call("answering_standin", "echo", "still here") == "still here"
    assert not container._died.ready()


def test_a_reply_connection_the_broker_closed_is_replaced_before_the_next_reply(
        start_service, rpc, amqp_uri):
    container = start_service(Answering)
    assert rpc.call("answering_standin", "echo", 1) == 1
    old = replies_of(container)._connection
    port = old.connection.sock.getsockname()[1]
    vhost = amqp_uri.rsplit("/", 1)[1]

    def broker_side() -> Any:
        listed = requests.get(f"{infra.RABBIT_API}/vhosts/{vhost}/connections",
                              auth=infra.AUTH, timeout=10).json()
        return next((c["name"] for c in listed if c.get("peer_port") == port), None)

    name = infra.wait_until(broker_side, timeout=15, interval=0.2,
                            message="the reply connection to be listed")
    requests.delete(f"{infra.RABBIT_API}/connections/{requests.utils.quote(name, safe='')}",
                    auth=infra.AUTH, timeout=10).raise_for_status()
    infra.wait_until(lambda: readable(old.connection.sock.fileno()), timeout=15,
                     message="the broker's close of the reply connection to arrive")
    # well within the deadline: the dead connection is seen, not written to and lost
    assert rpc.call("answering_standin", "echo", 2, timeout=2) == 2
    assert replies_of(container)._connection is not old


def test_a_method_the_service_lacks_answers_method_not_found(start_service, rpc):
    start_service(Answering)
    for _ in range(2):  # the second time through the looked-up routing keys
        with pytest.raises(RemoteFailure) as missing:
            rpc.call("answering_standin", "no_such_method")
        assert missing.value.exc_type == "MethodNotFound"
        assert rpc.call("answering_standin", "echo", "found") == "found"


def test_a_nameko_proxy_whose_reply_queue_is_durable_gets_a_confirmed_reply(start_service,
                                                                           amqp_uri):
    container = start_service(Answering)
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=5) as cluster:
        assert cluster.answering_standin.echo(3) == 3
        with pytest.raises(Exception) as refused:
            cluster.answering_standin.refuse()
    assert "too small" in str(refused.value)
    # nameko's own responder (persistent, confirmed) answered: the kept connection,
    # which sends without confirms, was never opened
    assert replies_of(container)._connection is None
