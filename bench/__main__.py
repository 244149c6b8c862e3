"""`python -m bench [module ...]`: start the whole CRM as processes on its own databases
and run each benchmark module's ``run(stack)`` (bench/core.py first), printing figures."""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time

import bench
from tests.support.stack import Stack


def modules(selected: list[str]) -> list[str]:
    found = sorted(info.name for info in pkgutil.iter_modules(bench.__path__)
                   if info.name not in ("report", "__main__") and not info.name.startswith("_"))
    found.remove("core")
    names = ["core", *found]
    return [n for n in names if n in selected] if selected else names


def main(argv: list[str]) -> int:
    stack = Stack()
    # The gateway as deployed (gateway/serve.py: two worker processes), not the tests'
    # single process: there sixteen threads share one GIL, and a static GET cost the
    # gateway 1.6 ms of CPU against 0.9 ms with two (2026-12-07).
    stack.env["WEB_WORKERS"] = os.environ.get("WEB_WORKERS", "2")
    names = modules(argv)
    # A module that starts what it measures itself (NEEDS_STACK = False) runs alone fast.
    needed = any(getattr(importlib.import_module(f"bench.{n}"), "NEEDS_STACK", True)
                 for n in names)
    try:
        if needed:
            print("starting the CRM for benchmarks ...", flush=True)
            stack.up()
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            if not hasattr(module, "run"):
                continue
            print(f"\n== {name} ==", flush=True)
            started = time.monotonic()
            module.run(stack)
            print(f"({name}: {time.monotonic() - started:.0f} s)", flush=True)
    finally:
        if needed:
            stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
