"""The header's global search at scale: clients with their contacts and phones generated
into the stack's clients database (bench.clients.generate), deals loaded into a dedicated
deals database put under the stack's deals service (bench.deals.fill), then ``/search``
timed through the gateway as the header's script asks it (a signed-in session, JSON):
a name part, a phone typed as "8 (916) ...", an INN, an e-mail, a deal number.  The goal
is p99 ≤ 100 ms at 1,000,000 deals / 200,000 clients.

Scale: ``BENCH_SEARCH_CLIENTS`` (default 200 000) and ``BENCH_DEALS`` (default 1 000 000,
shared with bench.deals), ``BENCH_REPEAT`` queries of each kind (default 100).
`python -m bench search`.
"""
from __future__ import annotations

import os
import random
from typing import Any

from sqlalchemy import create_engine

from bench.clients import (
    CONTACTS_PER_CLIENT,
    FIRST_INN,
    WORDS,
    generate,
    load_average,
    stack_clients_url,
)
from bench.deals import DEALS, bench_prefix, bench_url, load, release, use_database, web_session
from bench.report import compare, show, timed
from gateway.rpc import RpcClient
from tests.support.stack import Stack

CLIENTS = int(os.environ.get("BENCH_SEARCH_CLIENTS", 200_000))
REPEAT = int(os.environ.get("BENCH_REPEAT", 100))
GOAL_MS = 100.0
SEED = 20261201


def queries(rng: random.Random) -> dict[str, list[str]]:
    """REPEAT texts of each kind, for records that exist."""
    def phone() -> str:
        n = rng.randrange(1, CLIENTS * CONTACTS_PER_CLIENT + 1)
        digits = ("495" if n % 5 == 0 else "916") + f"{n:07d}"
        return f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}"

    def name() -> str:
        g = rng.randrange(1, CLIENTS + 1)
        return f"{WORDS[(g // 7) % len(WORDS)].lower()} {WORDS[(g // 311) % len(WORDS)][:4]}"

    return {
        "name part": [name() for _ in range(REPEAT)],
        "phone (8 (916) ... format)": [phone() for _ in range(REPEAT)],
        "INN": [str(FIRST_INN + rng.randrange(1, CLIENTS + 1)) for _ in range(REPEAT)],
        "e-mail": [f"nobody{rng.randrange(10**6)}@example.ru" for _ in range(REPEAT)],
        "deal number": [f"№{rng.randrange(1, DEALS + 1)}" for _ in range(REPEAT)],
    }


def run(stack: Stack) -> None:
    engine = create_engine(stack_clients_url(stack))
    try:
        seconds = generate(engine, CLIENTS)
    finally:
        engine.dispose()
    print(f"generated {CLIENTS:,} clients with {CLIENTS * CONTACTS_PER_CLIENT:,} contacts "
          f"in {seconds:.0f} s", flush=True)
    anna = stack.ok("GET", "/me")["id"]
    url = bench_url(stack)
    print(f"loading {DEALS:,} deals ...", flush=True)
    print(load(url, [anna]), flush=True)
    use_database(stack, bench_prefix(stack))
    try:
        session = web_session(stack, "anna")
        everything: list[float] = []
        by_kind: dict[str, list[float]] = {}
        late: list[str] = []
        for kind, texts in queries(random.Random(SEED)).items():
            asked = iter(range(10**9))

            def ask(texts: list[str] = texts, asked: Any = asked) -> None:
                answer = session.get(f"{stack.url}/search", timeout=10,
                                     params={"q": texts[next(asked) % len(texts)]},
                                     headers={"Accept": "application/json"})
                answer.raise_for_status()
                late.extend(answer.json()["unavailable"])  # a panel past the deadline

            samples = timed(ask, len(texts))
            by_kind[kind] = samples
            everything += samples
            show(f"global search, {kind}", samples)
        if late:
            print(f"    {len(late)} answers past the search deadline: {sorted(set(late))}")
        show("global search, all kinds", everything)
        rpc = RpcClient(stack.env["AMQP_URI"], timeout=10, name="bench")
        try:  # the floor: one round trip to a service, the least a search can cost
            one_rpc = timed(lambda: rpc.call("clients", "health"), REPEAT)
        finally:
            rpc.close()
        show("one RPC (clients.health)", one_rpc)
        print(f"    at {DEALS:,} deals / {CLIENTS:,} clients, load average "
              f"{load_average()}:", flush=True)
        # each kind beside the floor: which part of the search box misses the goal
        for kind, samples in by_kind.items():
            compare(f"search, {kind}", samples, one_rpc, "one RPC", goal_p99=GOAL_MS)
        compare("global search, all kinds", everything, one_rpc, "one RPC", goal_p99=GOAL_MS)
    finally:
        use_database(stack, None)
        release(url)
