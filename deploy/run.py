"""`make run`: migrate, start every process of the Procfile, seed demo data on first start,
print the URL and the demo logins; a process that dies is restarted (with back-off);
Ctrl-C stops everything it started."""
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


class Supervisor:
    """Keeps every process running: one that exits is started again after a back-off
    (doubling from ``min_delay`` to ``max_delay``, back to the minimum once it has stayed
    up ``stable_after`` seconds), and the reason is logged.  One crashing service must not
    take the whole CRM down, nor be restarted in a tight loop."""

    def __init__(self, commands: dict[str, str], env: dict[str, str],
                 min_delay: float = 1.0, max_delay: float = 30.0, stable_after: float = 60.0,
                 say: Any = None) -> None:
        self.commands = commands
        self.env = env
        self.min_delay, self.max_delay, self.stable_after = min_delay, max_delay, stable_after
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started_at: dict[str, float] = {}
        self.delay: dict[str, float] = {}
        self.restart_at: dict[str, float] = {}
        self.restarts: dict[str, int] = dict.fromkeys(commands, 0)

    def start(self, name: str) -> None:
        proc = start_process(self.commands[name], self.env, subprocess.PIPE)
        color = COLORS[list(self.commands).index(name) % len(COLORS)]
        threading.Thread(target=pump, args=(name, color, proc.stdout), daemon=True).start()
        self.procs[name] = proc
        self.started_at[name] = time.monotonic()

    def start_all(self) -> None:
        for name in self.commands:
            self.start(name)

    def poll(self) -> None:
        """Notice exits and restart what is due; call it every fraction of a second."""
        now = time.monotonic()
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is None or name in self.restart_at:
                continue
            ran = now - self.started_at[name]
            previous = self.delay.get(name, 0.0)
            delay = self.min_delay if ran >= self.stable_after or not previous \
                else min(self.max_delay, previous * 2)
            self.delay[name] = delay
            self.restart_at[name] = now + delay
            why = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            self.say(f"{name} {why} after {ran:.1f} s; restarting in {delay:g} s")
        for name, when in list(self.restart_at.items()):
            if when <= now:
                del self.restart_at[name]
                self.restarts[name] += 1
                self.start(name)

    def stop(self) -> None:
        self.restart_at.clear()
        stop_all(list(self.procs.values()))


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
    supervisor = Supervisor(processes(), env)
    supervisor.start_all()
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
        while True:
            supervisor.poll()
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        supervisor.stop()


if __name__ == "__main__":
    sys.exit(main())
