"""A background worker inside a service: a loop that makes a pass when an entrypoint that
queued work has committed, or every ``poll`` seconds, with a green pool for the work itself.

Subclasses set up their own resources in ``setup`` (calling ``start_loop_state``) and do one
pass in ``run_pass``; workers call ``self.<dependency>.queued()`` after queuing work, and the
loop wakes once that worker's transaction is committed (nameko's ``worker_result``).
"""
from __future__ import annotations

import logging
from typing import Any

import eventlet
from eventlet import greenthread
from eventlet.event import Event
from eventlet.greenpool import GreenPool
from nameko.extensions import DependencyProvider

log = logging.getLogger("crm.background")


class WakeHandle:
    """What an entrypoint sees: ``queued()`` asks for a pass after its commit."""

    def __init__(self, provider: BackgroundWorker, worker_ctx: Any) -> None:
        self._provider = provider
        self._worker_ctx = worker_ctx

    def queued(self) -> None:
        self._provider._wanted.add(self._worker_ctx)


class BackgroundWorker(DependencyProvider):
    identifier = "background"

    def start_loop_state(self, concurrency: int, poll: float) -> None:
        self.pool = GreenPool(concurrency)
        self.poll = poll
        self._wake = Event()
        self._running = True
        self._wanted: set[Any] = set()

    def run_pass(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self.container.spawn_managed_thread(self._loop, identifier=self.identifier)

    def stop(self) -> None:
        self._running = False
        self.wake()
        self.pool.waitall()
        self._dispose()

    def kill(self) -> None:
        self._running = False
        for thread in list(self.pool.coroutines_running):
            greenthread.kill(thread)  # work in flight dies with the process
        self._dispose()

    def _dispose(self) -> None:
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.dispose()

    def wake(self) -> None:
        if not self._wake.ready():
            self._wake.send(True)

    def get_dependency(self, worker_ctx: Any) -> Any:
        return WakeHandle(self, worker_ctx)

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        if worker_ctx in self._wanted:
            self._wanted.discard(worker_ctx)
            if exc_info is None:
                self.wake()

    def worker_teardown(self, worker_ctx: Any) -> None:
        self._wanted.discard(worker_ctx)

    def _loop(self) -> None:
        while self._running:
            with eventlet.Timeout(self.poll, False):
                self._wake.wait()
            self._wake = Event()
            if not self._running:
                return
            try:
                self.run_pass()
            except Exception:  # a database outage must not end the loop
                log.exception("%s pass failed", self.identifier)
