"""Lead intake at the edges: website form submissions at the public endpoint (goal 500/s
with p99 ≤ 100 ms) and inbound mail through the SMTP listener (goal 100/s, none lost).

Closed loop: ``THREADS`` clients send as fast as they are answered for ``SECONDS``; the
rate is what was answered per second, the latency each answer's.  Every form post and
every mail is then counted in the intake database (``bench_counts``): what was answered
"ok"/250 must be there, hidden (bot) submissions apart."""
from __future__ import annotations

import os
import smtplib
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests
from aiosmtpd.controller import Controller

from bench.notifications import cpu_seconds
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
FORM_GOAL, FORM_P99_GOAL, MAIL_GOAL = 500, 100.0, 100


class _Sink:
    """The SMTP floor: aiosmtpd taking each message and answering 250 at once."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return "250 OK"


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
    url = f"{stack.url}/f/{form['public_id']}"
    token = requests.get(url, timeout=10).json()["token"]
    since = rpc.call("intake", "last_lead_id")

    def post(thread: int, n: int, session: Any) -> Any:
        session = session or requests.Session()
        answer = session.post(f"{url}/submit", timeout=10, json={
            "token": token, "consent": True, "consent_version": 1,
            "name": f"Bench {thread}-{n}", "phone": f"+7916{thread:03d}{n:04d}"})
        if answer.status_code != 200:
            raise RuntimeError(answer.text)
        return session

    def script(thread: int, n: int, session: Any) -> Any:
        # The floor: the same gateway processes answering the public form's script (no
        # RPC, no database): what the gateway's process model serves at all on this box.
        session = session or requests.Session()
        answer = session.get(f"{stack.url}/f/form.js", timeout=10)
        if answer.status_code != 200:
            raise RuntimeError(answer.text)
        return session

    floor, _ = _loop(SECONDS, THREADS, script)
    pids = {name: stack.procs[name].pid for name in ("intake", "gateway")}
    cpu_before = {name: tree_cpu(pid) for name, pid in pids.items()}
    profile = Profile(pids["intake"], SECONDS + 1, "intake")
    latencies, failures = _loop(SECONDS, THREADS, post)
    profile.finish()
    # CPU per answered submission, by process: which one the 2 cores are spent in
    spent = {name: (tree_cpu(pid) - cpu_before[name]) * 1000 / max(len(latencies), 1)
             for name, pid in pids.items()}
    _report("form submissions (public endpoint)", latencies, failures, SECONDS, FORM_GOAL,
            ("gateway static GET", floor, SECONDS), FORM_P99_GOAL)
    stored = rpc.call("intake", "bench_counts", since).get("form", 0)
    print(f"{'  answered ok / stored as leads':<36} {len(latencies)} / {stored}", flush=True)
    print("  CPU per submission: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in
                                               spent.items())
          + f"; the box's load {os.getloadavg()[0]:.1f}", flush=True)
    profile.top()
    second_replica(stack)
    before = rpc.call("intake", "last_lead_id")
    pids["intake-2"] = stack.procs["intake-2"].pid
    cpu_before = {name: tree_cpu(pid) for name, pid in pids.items()}
    latencies, failures = _loop(SECONDS, THREADS, post)
    spent = {name: (tree_cpu(pid) - cpu_before[name]) * 1000 / max(len(latencies), 1)
             for name, pid in pids.items()}
    _report("form submissions, two intake replicas", latencies, failures, SECONDS,
            FORM_GOAL, ("gateway static GET", floor, SECONDS), FORM_P99_GOAL)
    stored = rpc.call("intake", "bench_counts", before).get("form", 0)
    print(f"{'  answered ok / stored as leads':<36} {len(latencies)} / {stored}", flush=True)
    print("  CPU per submission: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in
                                               spent.items())
          + f"; the box's load {os.getloadavg()[0]:.1f}", flush=True)


def second_replica(stack: Stack) -> None:
    """A second intake process on the same queue (replicas are stateless); it stays for
    the mail run."""
    log = open(stack.logs / f"{stack.prefix}-intake-2.log", "ab")  # noqa: SIM115
    stack.procs["intake-2"] = start_process(processes()["intake"], stack.env, log)
    vhost = stack.env["AMQP_URI"].rsplit("/", 1)[1]

    def consumers() -> int:
        answer = requests.get(f"{infra.RABBIT_API}/queues/{vhost}/rpc-intake",
                              auth=infra.AUTH, timeout=5)
        return int(answer.json().get("consumers", 0)) if answer.ok else 0

    wait_for(lambda: consumers() == 2, timeout=60, message="two intake replicas")


def mails(stack: Stack, rpc: RpcClient) -> None:
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
    latencies, failures = _loop(SECONDS, MAIL_THREADS, send)
    _report("inbound mail (SMTP listener)", latencies, failures, SECONDS, MAIL_GOAL,
            ("aiosmtpd sink, no RPC", floor, SECONDS))
    stored = rpc.call("intake", "bench_counts", since).get("email", 0)
    print(f"{'  accepted (250) / stored as leads':<36} {len(latencies)} / {stored}"
          f"   lost {len(latencies) - stored}", flush=True)


def run(stack: Stack) -> None:
    rpc = RpcClient(stack.env["AMQP_URI"], timeout=10, name="bench")
    try:
        forms(stack, rpc)
        mails(stack, rpc)
    finally:
        rpc.close()
