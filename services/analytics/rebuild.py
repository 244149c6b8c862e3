"""Rebuild the funnel's read model from the deals service's own history, by RPC, in pages:
``python -m services.analytics.rebuild [--if-empty] [--page 10000]``.

Safe to run at any time and as often as wanted: each deal's replayed moves replace the ones
it had up to its current version (the same rows again on a second run), and events that
arrive meanwhile are applied on top.  Each page is replayed in SQL as it came
(``rebuild_store.rebuild_page``)."""
from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.analytics import models, rebuild_store, store
from services.kit.config import load_component_config
from services.kit.db import make_engine, transaction

Call = Callable[..., Any]
# pages written at once (each a transaction of its own)
WRITERS = 2


def is_empty(factory: sessionmaker[Session]) -> bool:
    with factory() as session:
        return not session.scalar(select(select(models.DealState.deal_id).exists()))


def rebuild(call: Call, factory: sessionmaker[Session], page: int = 10_000,
            progress: Callable[[int, float], None] | None = None,
            writers: int = WRITERS) -> int:
    """Replay every deal; ``call(service, method, *args, **kwargs)`` asks the deals
    service.  Returns how many deals were replayed."""
    kinds = {s["code"]: s["kind"] for s in call("deals", "list_statuses")}
    # a read model rebuilt from empty is a bulk load: its secondary indexes are built once
    # at the end, from sorted keys, instead of taking each row at a random place of the
    # tree (a sixth of the rebuild's database time); whatever happens, they are back when
    # this returns, and a rebuild killed midway puts them back when the next one starts
    rebuild_store.restore_indexes(factory)
    if is_empty(factory):
        rebuild_store.defer_indexes(factory)
    try:
        return _replayed(call, factory, kinds, page, progress, writers)
    finally:
        rebuild_store.restore_indexes(factory)


def _replayed(call: Call, factory: sessionmaker[Session], kinds: dict[str, str], page: int,
              progress: Callable[[int, float], None] | None, writers: int) -> int:
    done, started = 0, time.monotonic()
    # the next page is asked while this one is written: deals reads and serialises while
    # analytics copies and replays (a page's write does not depend on the next one); and
    # ``writers`` pages are written at once, each in its own transaction: the pages hold
    # different deals, so their writes lock different rows
    writing: deque[Future[int]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rebuild-fetch") as fetcher, \
            ThreadPoolExecutor(max_workers=max(1, writers),
                               thread_name_prefix="rebuild-write") as writer:
        coming = fetcher.submit(call, "deals", "history_columns", after=None, limit=page)
        while True:
            answer = coming.result()
            after = answer["next_after"]
            if after is not None:
                coming = fetcher.submit(call, "deals", "history_columns", after=after,
                                        limit=page)
            writing.append(writer.submit(_written, factory, answer, kinds))
            while writing and (len(writing) >= max(1, writers) or after is None):
                done += writing.popleft().result()
                if progress:
                    progress(done, time.monotonic() - started)
            if after is None:
                return done


def _written(factory: sessionmaker[Session], answer: dict[str, Any],
             kinds: dict[str, str]) -> int:
    with transaction(factory) as session:
        rebuild_store.rebuild_page(session, answer, kinds)
    return len(answer["deals"]["id"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.analytics.rebuild")
    parser.add_argument("--if-empty", action="store_true",
                        help="do nothing when the read model already holds deals")
    parser.add_argument("--page", type=int, default=10_000)
    parser.add_argument("--writers", type=int, default=WRITERS,
                        help="pages written at once")
    args = parser.parse_args(argv)
    from gateway.rpc import RpcClient

    config = load_component_config("analytics")
    engine = make_engine(config["DB_URL"], pool_size=max(2, args.writers))
    factory = sessionmaker(engine)
    if args.if_empty and not is_empty(factory):
        print("analytics: the read model is not empty; nothing to rebuild")
        return 0
    client = RpcClient(config["AMQP_URI"], timeout=float(config.get("RPC_TIMEOUT", 5)) * 6,
                       name="analytics-rebuild")
    try:
        total = rebuild(client.call, factory, args.page, lambda n, s: print(
            f"analytics: {n} deals replayed ({n / max(s, 1e-6):.0f}/s)", flush=True),
            writers=args.writers)
        store.settle(engine)
    finally:
        client.close()
        engine.dispose()
    print(f"analytics: rebuilt from {total} deals")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
