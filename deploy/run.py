"""`make run`: migrate, start every process of the Procfile, seed demo data on first start,
print the URL and the demo logins; Ctrl-C stops everything it started."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from typing import IO, Any

from deploy.bootstrap import bootstrap
from deploy.procfile import processes

COLORS = ("36", "33", "35", "32", "34", "31")


def pump(name: str, color: str, stream: IO[bytes]) -> None:
    width = max(len(n) for n in processes())
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip()
        sys.stdout.write(f"\x1b[{color}m{name:<{width}}\x1b[0m | {line}\n")
        sys.stdout.flush()


def start_process(command: str, env: dict[str, str], stdout: Any) -> subprocess.Popen[bytes]:
    """Start one Procfile command with this interpreter, in its own process group."""
    argv = shlex.split(command)
    argv[0] = sys.executable if argv[0] == "python" else argv[0]
    return subprocess.Popen(argv, env=env, stdout=stdout, stderr=subprocess.STDOUT,
                            start_new_session=True)


def start_all(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i, (name, command) in enumerate(processes().items()):
        proc = start_process(command, env, subprocess.PIPE)
        threading.Thread(target=pump, args=(name, COLORS[i % len(COLORS)], proc.stdout),
                         daemon=True).start()
        procs.append(proc)
    return procs


def wait_healthy(url: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last: dict[str, object] = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=3) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            last = json.load(exc)
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the CRM did not become healthy in {timeout:.0f} s: {last}")


def stop_all(procs: list[subprocess.Popen[bytes]], grace: float = 10) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    port = os.environ.get("PORT", "8000")
    url = f"http://127.0.0.1:{port}"
    # SIGTERM (a supervisor, `timeout`) must stop the children as Ctrl-C does: they run in
    # their own sessions and would otherwise outlive us.
    signal.signal(signal.SIGTERM, interrupt)
    bootstrap()
    env = {**os.environ, "PORT": port}
    procs = start_all(env)
    try:
        wait_healthy(url)
        from deploy.demo import DEMO_PASSWORD, DEMO_USERS, seed

        seed()
        # an installation that had deals before analytics: replay them once
        from services.analytics.rebuild import main as rebuild_analytics

        rebuild_analytics(["--if-empty"])
        print("\n" + "=" * 60)
        print(f"  CRM is running: {url}")
        for username, _full_name, roles in DEMO_USERS:
            print(f"  login {username:<11} password {DEMO_PASSWORD}   ({', '.join(roles)})")
        print("  Ctrl-C stops everything.")
        print("=" * 60 + "\n", flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a process exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all(procs)


if __name__ == "__main__":
    sys.exit(main())
