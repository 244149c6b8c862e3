"""Where the box's CPU goes during a measured loop, by process: a 2-core machine runs
the whole stack, PostgreSQL, RabbitMQ and the load generator at once, so a throughput
figure is read beside what each of them spent on one unit of it."""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.support import infra
from tests.support.stack import Stack


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (gunicorn's workers are the gateway's)."""
    total = cpu_seconds(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                total += cpu_seconds(int(entry.name))
    return total


class CpuSplit:
    """Where the box's CPU goes during a loop, by process: every process of the stack
    (with its children), this stack's PostgreSQL backends by database, RabbitMQ's beam
    (shared with whatever else uses the broker: an upper bound) and the load generator
    (this process: its HTTP clients).  ``per(n)`` is milliseconds per answered request
    since ``start``."""

    def __init__(self, stack: Stack, here: str = "load generator") -> None:
        self.stack = stack
        self.here = here  # what this process does in the loop
        self.before: dict[str, float] = {}

    def _backends(self) -> dict[int, str]:
        engine = create_engine(f"{infra.PG_BASE}/postgres")
        try:
            with engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT pid, datname FROM pg_stat_activity WHERE datname LIKE :p"),
                    {"p": f"{self.stack.prefix}_%"}).all()
        finally:
            engine.dispose()
        return {int(pid): f"postgres {name.removeprefix(self.stack.prefix + '_')}"
                for pid, name in rows}

    def snapshot(self) -> dict[str, float]:
        spent: dict[str, float] = {}
        for name, proc in self.stack.procs.items():
            spent[name] = tree_cpu(proc.pid)
        for pid, name in self._backends().items():
            try:
                spent[name] = spent.get(name, 0.0) + cpu_seconds(pid)
            except OSError:  # the backend ended meanwhile
                continue
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if (entry / "comm").read_text().strip() == "beam.smp":
                        spent["rabbitmq (shared)"] = cpu_seconds(int(entry.name))
                except OSError:
                    continue
        spent[self.here] = cpu_seconds(os.getpid())
        return spent

    def start(self) -> None:
        self.before = self.snapshot()

    def per(self, answered: int) -> dict[str, float]:
        """Milliseconds per answered request, by process, biggest first (a backend that
        was born during the loop counts from its start)."""
        after = self.snapshot()
        spent = {name: (seconds - self.before.get(name, 0.0)) * 1000 / max(answered, 1)
                 for name, seconds in after.items()}
        return dict(sorted(((k, v) for k, v in spent.items() if v >= 0.05),
                           key=lambda kv: -kv[1]))

    @staticmethod
    def show(spent: dict[str, float], what: str = "submission") -> None:
        total = sum(spent.values())
        cores = os.cpu_count() or 1
        print(f"  CPU per {what}, every process: {total:.1f} ms in all (at most "
              f"{cores * 1000 / max(total, 0.001):.0f}/s on {cores} cores); the box's load "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        for name, ms in spent.items():
            print(f"    {ms:6.2f} ms  {name}", flush=True)
