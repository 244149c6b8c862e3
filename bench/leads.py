"""Lead intake at the edges: website form submissions at the public endpoint (goal 500/s
with p99 ≤ 100 ms) and inbound mail through the SMTP listener (goal 100/s, none lost).

Closed loop: ``THREADS`` clients send as fast as they are answered for ``SECONDS``; the
rate is what was answered per second, the latency each answer's.  Every form post and
every mail is then counted in the intake database (``bench_counts``): what was answered
"ok"/250 must be there, hidden (bot) submissions apart."""
from __future__ import annotations

import http.client
import json
import smtplib
import threading
import time
from email.message import EmailMessage
from typing import Any

import requests
from aiosmtpd.controller import Controller

from bench.cpu import CpuSplit
from bench.profile import Profile
from bench.report import percentile, verdict
from deploy.procfile import processes
from deploy.run import start_process
from gateway.rpc import RpcClient
from tests.support import infra
from tests.support.stack import Stack, free_port, wait_for

THREADS = 16
SECONDS = 5.0
MAIL_THREADS = 8
PROFILE_SECONDS = 3.0
REPLICAS = 2  # the form loop again with a second intake process on the same queue
FORM_GOAL, FORM_P99_GOAL, MAIL_GOAL = 500, 100.0, 100


class _Sink:
    """The SMTP floor: aiosmtpd taking each message and answering 250 at once."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return "250 OK"


class _Client:
    """The load generator's HTTP client: one kept-alive connection per thread, nothing
    else (``requests`` costs the box about a millisecond of CPU a request, as much as the
    gateway's own work for a static file; the floor and the submissions use this same
    client, so the floor stays what the gateway serves, not what the client affords)."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.connection = http.client.HTTPConnection(host, int(port or 80), timeout=10)

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            self.connection.request(method, path, body=body, headers=headers)
            answer = self.connection.getresponse()
            return answer.status, answer.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            self.connection.close()  # reconnects on the next request
            raise


def _loop(seconds: float, threads: int, work: Any) -> tuple[list[float], int]:
    """Run ``work(thread, n)`` in ``threads`` threads for ``seconds``; latencies (ms) of
    the calls that succeeded, and the failures."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        mine, bad, n = [], 0, 0
        state = None
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                state = work(index, n, state)
                mine.append((time.perf_counter() - started) * 1000)
            except Exception:
                bad += 1
            n += 1
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return latencies, failures[0]


def _report(name: str, latencies: list[float], failures: int, seconds: float, goal: float,
            floor: tuple[str, list[float], float], p99_goal: float | None = None) -> None:
    """The rate and its p99 beside the floor measured in the same run (the same closed
    loop against what the path cannot be faster than), the goal, ok/short."""
    floor_name, floor_latencies, floor_seconds = floor
    rate = len(latencies) / seconds
    verdict(name, rate, "/s", floor=len(floor_latencies) / floor_seconds,
            floor_name=floor_name, goal=goal)
    if p99_goal is not None:
        verdict(f"{name}, p99", percentile(latencies, 99), "ms",
                floor=percentile(floor_latencies, 99), floor_name=floor_name,
                goal=p99_goal, higher_is_better=False)
    print(f"  p50 {percentile(latencies, 50):.1f} ms, failed {failures}; floor p50 "
          f"{percentile(floor_latencies, 50):.1f} ms", flush=True)


def forms(stack: Stack, rpc: RpcClient) -> None:
    rpc.call("intake", "set_settings", {"form_ip_per_minute": 100_000,
                                        "form_per_minute": 100_000})
    form = rpc.call("intake", "save_form", {
        "name": "bench", "consent_text": "Согласие на обработку данных (бенчмарк).",
        "min_fill_seconds": 0, "fields": [{"name": "name", "label": "Имя"},
                                          {"name": "phone", "label": "Телефон"}]})
    path = f"/f/{form['public_id']}"
    token = requests.get(f"{stack.url}{path}", timeout=10).json()["token"]
    since = rpc.call("intake", "last_lead_id")

    body = {"token": token, "consent": True, "consent_version": 1}

    def post(thread: int, n: int, client: Any) -> Any:
        client = client or _Client(stack.url)
        status, text = client.request("POST", f"{path}/submit", json.dumps({
            **body, "name": f"Bench {thread}-{n}", "phone": f"+7916{thread:03d}{n:04d}"}))
        if status != 200:
            raise RuntimeError(text)
        return client

    def script(thread: int, n: int, client: Any) -> Any:
        # The floor: the same gateway processes answering the public form's script (no
        # RPC, no database), asked by the same client: what the gateway's process model
        # serves at all on this box.
        client = client or _Client(stack.url)
        status, text = client.request("GET", "/f/form.js")
        if status != 200:
            raise RuntimeError(text)
        return client

    split = CpuSplit(stack)
    split.start()
    floor, _ = _loop(SECONDS, THREADS, script)
    floor_spent = split.per(len(floor))
    print(f"floor: gateway static GET {len(floor) / SECONDS:.0f}/s, p99 "
          f"{percentile(floor, 99):.1f} ms", flush=True)
    CpuSplit.show(floor_spent, "request")
    split.start()
    latencies, failures = _loop(SECONDS, THREADS, post)
    spent = split.per(len(latencies))
    _report("form submissions (public endpoint)", latencies, failures, SECONDS, FORM_GOAL,
            ("gateway static GET", floor, SECONDS), FORM_P99_GOAL)
    stored = rpc.call("intake", "bench_counts", since).get("form", 0)
    print(f"{'  answered ok / stored as leads':<36} {len(latencies)} / {stored}", flush=True)
    CpuSplit.show(spent)
    # py-spy on its own loop afterwards: sampling costs the box CPU (182/s without it,
    # 130/s with it in one quiet moment), so it never runs during a measured one
    profile = Profile(stack.procs["intake"].pid, PROFILE_SECONDS + 1, "intake")
    _loop(PROFILE_SECONDS, THREADS, post)
    profile.finish()
    profile.top()
    if REPLICAS < 2:
        return
    second_replica(stack)
    before = rpc.call("intake", "last_lead_id")
    split.start()
    latencies, failures = _loop(SECONDS, THREADS, post)
    spent = split.per(len(latencies))
    _report("form submissions, two intake replicas", latencies, failures, SECONDS,
            FORM_GOAL, ("gateway static GET", floor, SECONDS), FORM_P99_GOAL)
    stored = rpc.call("intake", "bench_counts", before).get("form", 0)
    print(f"{'  answered ok / stored as leads':<36} {len(latencies)} / {stored}", flush=True)
    CpuSplit.show(spent)
    one_replica_again(stack)


def _intake_consumers(stack: Stack) -> int:
    vhost = stack.env["AMQP_URI"].rsplit("/", 1)[1]
    answer = requests.get(f"{infra.RABBIT_API}/queues/{vhost}/rpc-intake",
                          auth=infra.AUTH, timeout=5)
    return int(answer.json().get("consumers", 0)) if answer.ok else 0


def second_replica(stack: Stack) -> None:
    """A second intake process on the same queue (replicas are stateless)."""
    log = open(stack.logs / f"{stack.prefix}-intake-2.log", "ab")  # noqa: SIM115
    stack.procs["intake-2"] = start_process(processes()["intake"], stack.env, log)
    wait_for(lambda: _intake_consumers(stack) == 2, timeout=60, message="two intake replicas")


def one_replica_again(stack: Stack) -> None:
    """Back to the deployed shape (the Procfile's one intake) for the mail run: on two
    cores a second replica's own timers and halved batches cost mail more than its
    second process gives (25.5 against 16.4 ms of CPU a message, 2026-12-07)."""
    replica = stack.procs.pop("intake-2", None)
    if replica is None:
        return
    replica.terminate()
    replica.wait(timeout=30)
    wait_for(lambda: _intake_consumers(stack) == 1, timeout=60, message="one intake again")


def settle(stack: Stack, timeout: float = 60.0) -> None:
    """Wait until the form loops' aftermath is worked off (every queue of the stack's
    vhost empty twice in a row: the new-lead notices delivered, the duplicates looked
    up), so the mail loop measures mail, not the forms' tail."""
    vhost = stack.env["AMQP_URI"].rsplit("/", 1)[1]
    started, empty = time.monotonic(), 0
    while empty < 2 and time.monotonic() - started < timeout:
        answer = requests.get(f"{infra.RABBIT_API}/queues/{vhost}", auth=infra.AUTH,
                              timeout=5)
        queued = sum(int(q.get("messages", 0) or 0) for q in answer.json()) \
            if answer.ok else 1
        empty = empty + 1 if queued == 0 else 0
        time.sleep(1.0)
    print(f"(the stack settled in {time.monotonic() - started:.0f} s)", flush=True)


def mails(stack: Stack, rpc: RpcClient) -> None:
    settle(stack)
    port = int(stack.env["SMTP_LISTEN_PORT"])
    since = rpc.call("intake", "last_lead_id")

    def send(thread: int, n: int, smtp: Any, to_port: int = port) -> Any:
        smtp = smtp or smtplib.SMTP("127.0.0.1", to_port, timeout=10)
        message = EmailMessage()
        message["From"] = f"sender-{thread}-{n}@bench.example"  # one each: no flood
        message["To"] = "sales@crm.example"
        message["Subject"] = f"Заявка {thread}-{n}"
        message["Message-ID"] = f"<bench-{thread}-{n}-{time.time_ns()}@bench.example>"
        message.set_content("Прошу счёт на 10 штук.")
        smtp.send_message(message)
        return smtp

    sink = Controller(_Sink(), hostname="127.0.0.1", port=free_port())
    sink.start()
    try:
        floor, _ = _loop(SECONDS, MAIL_THREADS, lambda t, n, smtp: send(t, n, smtp, sink.port))
    finally:
        sink.stop()
    split = CpuSplit(stack)
    split.start()
    latencies, failures = _loop(SECONDS, MAIL_THREADS, send)
    spent = split.per(len(latencies))
    _report("inbound mail (SMTP listener)", latencies, failures, SECONDS, MAIL_GOAL,
            ("aiosmtpd sink, no RPC", floor, SECONDS))
    stored = rpc.call("intake", "bench_counts", since).get("email", 0)
    print(f"{'  accepted (250) / stored as leads':<36} {len(latencies)} / {stored}"
          f"   lost {len(latencies) - stored}", flush=True)
    CpuSplit.show(spent, "message")


def run(stack: Stack) -> None:
    rpc = RpcClient(stack.env["AMQP_URI"], timeout=10, name="bench")
    try:
        forms(stack, rpc)
        mails(stack, rpc)
    finally:
        rpc.close()
