"""Lead intake at the edges: website form submissions at the public endpoint (goal 500/s
with p99 ≤ 100 ms) and inbound mail through the SMTP listener (goal 100/s, none lost).

Closed loop: ``THREADS`` clients send as fast as they are answered for ``SECONDS``; the
rate is what was answered per second, the latency each answer's.  Every form post and
every mail is then counted in the intake database (``bench_counts``): what was answered
"ok"/250 must be there, hidden (bot) submissions apart."""
from __future__ import annotations

import smtplib
import threading
import time
from email.message import EmailMessage
from typing import Any

import requests

from bench.report import percentile
from gateway.rpc import RpcClient
from tests.support.stack import Stack

THREADS = 16
SECONDS = 5.0
MAIL_THREADS = 8
FORM_GOAL, FORM_P99_GOAL, MAIL_GOAL = 500, 100.0, 100


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
            p99_goal: float | None = None) -> None:
    rate = len(latencies) / seconds
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    verdict = "meets" if rate >= goal and (p99_goal is None or p99 <= p99_goal) else "misses"
    print(f"{name:<36} {rate:8.1f}/s (goal {goal}/s)   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
          f"{f' (goal ≤ {p99_goal:g} ms)' if p99_goal else ''}   failed {failures}   "
          f"→ {verdict} the goal", flush=True)


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

    latencies, failures = _loop(SECONDS, THREADS, post)
    _report("form submissions (public endpoint)", latencies, failures, SECONDS, FORM_GOAL,
            FORM_P99_GOAL)
    stored = rpc.call("intake", "bench_counts", since).get("form", 0)
    print(f"{'  answered ok / stored as leads':<36} {len(latencies)} / {stored}", flush=True)


def mails(stack: Stack, rpc: RpcClient) -> None:
    port = int(stack.env["SMTP_LISTEN_PORT"])
    since = rpc.call("intake", "last_lead_id")

    def send(thread: int, n: int, smtp: Any) -> Any:
        smtp = smtp or smtplib.SMTP("127.0.0.1", port, timeout=10)
        message = EmailMessage()
        message["From"] = f"sender-{thread}-{n}@bench.example"  # one each: no flood
        message["To"] = "sales@crm.example"
        message["Subject"] = f"Заявка {thread}-{n}"
        message["Message-ID"] = f"<bench-{thread}-{n}-{time.time_ns()}@bench.example>"
        message.set_content("Прошу счёт на 10 штук.")
        smtp.send_message(message)
        return smtp

    latencies, failures = _loop(SECONDS, MAIL_THREADS, send)
    _report("inbound mail (SMTP listener)", latencies, failures, SECONDS, MAIL_GOAL)
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
