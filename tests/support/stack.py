"""The whole CRM as processes (every Procfile entry), on its own databases, RabbitMQ
virtual host and port: what the end-to-end and browser tiers talk to over HTTP."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from deploy.procfile import processes
from deploy.run import start_process, stop_all
from services.kit.config import COMPONENTS
from tests.support import infra

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "demo-crm-2026"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    def __init__(self) -> None:
        self.prefix = f"crm_e2e_{uuid.uuid4().hex[:8]}"
        self.vhost = infra.create_vhost()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = ROOT / "var" / "e2e-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "DB_PREFIX": self.prefix, "AMQP_URI": infra.amqp_uri(self.vhost),
                    "PORT": str(self.port), "WEB_WORKERS": "1", "PAGE_DEADLINE": "1.5",
                    "OUTBOX_SWEEP_SECONDS": "0.5", "LOGIN_MAX_FAILURES": "20",
                    "PYTHONUNBUFFERED": "1", "SMTP_LISTEN_PORT": str(free_port()),
                    "IMAP_TICK_SECONDS": "1"}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._tokens: dict[str, str] = {}

    # -- lifecycle ----------------------------------------------------------------------
    def up(self) -> Stack:
        self._python("deploy.bootstrap")
        self._python("deploy.demo", "users")
        for name in processes():
            self.start(name)
        self.wait_healthy()
        return self

    def _python(self, module: str, *args: str) -> None:
        subprocess.run([sys.executable, "-m", module, *args], env=self.env, check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)

    def start(self, name: str) -> None:
        log = open(self.logs / f"{self.prefix}-{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = start_process(processes()[name], self.env, log)

    def stop(self, name: str) -> None:
        stop_all([self.procs.pop(name)])

    def kill(self, name: str) -> None:
        """SIGKILL: the process gets no chance to finish anything."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, 9)
        proc.wait()

    def down(self) -> None:
        stop_all(list(self.procs.values()), grace=5)
        self.procs.clear()
        for component in COMPONENTS:
            infra.admin_execute(f'DROP DATABASE IF EXISTS "{self.prefix}_{component}" WITH (FORCE)')
        infra.delete_vhost(self.vhost)

    def health(self) -> dict[str, Any]:
        try:
            return requests.get(f"{self.url}/healthz", timeout=5).json()
        except (requests.RequestException, ValueError):
            return {}

    def wait_healthy(self, timeout: float = 60) -> None:
        try:
            infra.wait_until(lambda: self.health().get("status") == "ok", timeout=timeout,
                             interval=0.3, message="the stack to be healthy")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {self.diagnosis()}") from None

    def diagnosis(self) -> str:
        """What is wrong with the stack, for a failure message: CI keeps no log files."""
        services = self.health().get("services") or {"gateway": "no answer"}
        lines = [f"unhealthy: {', '.join(n for n, s in services.items() if s != 'ok')}"]
        for name, proc in self.procs.items():
            if proc.poll() is None:
                continue
            log = self.logs / f"{self.prefix}-{name}.log"
            tail = log.read_text(errors="replace").splitlines()[-25:] if log.exists() else []
            lines.append(f"{name} exited with {proc.returncode}; its log ends:")
            lines.extend(f"    {line}" for line in tail)
        return "\n".join(lines)

    # -- the API as a user --------------------------------------------------------------
    def token(self, username: str = "anna") -> str:
        if username not in self._tokens:
            response = requests.post(f"{self.url}/api/v1/auth/token", timeout=10,
                                     json={"username": username, "password": PASSWORD})
            response.raise_for_status()
            self._tokens[username] = response.json()["token"]
        return self._tokens[username]

    def api(self, method: str, path: str, user: str = "anna", **kwargs: Any) -> requests.Response:
        extra = kwargs.pop("headers", {})
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self.token(user)}", **extra}
            response = requests.request(method, f"{self.url}/api/v1{path}", headers=headers,
                                        timeout=15, **kwargs)
            # a test that revoked this user's tokens ends them for the rest of the session
            # too: sign in again once, as an integration does
            if response.status_code != 401 or attempt:
                return response
            self._tokens.pop(user, None)
        return response

    def ok(self, method: str, path: str, user: str = "anna", **kwargs: Any) -> Any:
        response = self.api(method, path, user, **kwargs)
        assert response.status_code < 300, \
            f"{method} {path}: {response.status_code} {response.text}"
        return response.json()


def wait_for(check: Any, timeout: float = 15, message: str = "condition") -> Any:
    return infra.wait_until(check, timeout=timeout, interval=0.1, message=message)


def elapsed(fn: Any) -> tuple[Any, float]:
    started = time.monotonic()
    return fn(), time.monotonic() - started


def web_session(stack: Stack, username: str = "anna") -> requests.Session:
    """A browser-like session signed in through the login form (cookies, not a token)."""
    session = requests.Session()
    response = session.post(f"{stack.url}/login", data={"username": username,
                                                        "password": PASSWORD},
                            allow_redirects=False, timeout=10)
    assert response.status_code == 302
    return session
