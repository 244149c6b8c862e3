"""The gateway's RPC client forgets calls that timed out: its pending table does not grow
with every reply that never came, and a late reply is dropped."""
from __future__ import annotations

import eventlet
import pytest
from nameko.rpc import rpc

from gateway.rpc import RpcClient
from services.kit.errors import RemoteTimeout
from tests.support.infra import wait_until

ANSWERED: list[float] = []


class Slow:
    name = "slow_standin"

    @rpc
    def wait(self, seconds: float) -> float:
        eventlet.sleep(seconds)
        ANSWERED.append(seconds)
        return seconds


def test_a_timed_out_call_leaves_no_pending_entry_and_its_late_reply_is_dropped(
        start_service, amqp_uri):
    start_service(Slow)
    client = RpcClient(amqp_uri, timeout=2, name="leak-test")
    try:
        assert client.call("slow_standin", "wait", 0) == 0
        ANSWERED.clear()
        for _ in range(5):
            with pytest.raises(RemoteTimeout):
                client.call("slow_standin", "wait", 0.6, timeout=0.2)
        assert client.pending == 0
        wait_until(lambda: len(ANSWERED) == 5, timeout=10, interval=0.05,
                   message="the slow calls to finish")
        assert client.call("slow_standin", "wait", 0) == 0  # late replies did not confuse it
        assert client.pending == 0
    finally:
        client.close()


def test_a_reply_nobody_waited_for_is_swept_after_its_deadline(start_service, amqp_uri):
    start_service(Slow)
    client = RpcClient(amqp_uri, timeout=2, name="sweep-test")
    try:
        client.call_async("nobody_listens_here", "anything", timeout=0.2)
        assert client.pending == 1
        wait_until(lambda: client.pending == 0, timeout=5, interval=0.1,
                   message="the expired call to be swept")
    finally:
        client.close()


