"""The funnel at scale (goals from the issue: 1,000,000 deals, 5,000,000 transitions).

One generated history serves all three figures: a dedicated deals database
(``<prefix>_bench_deals``: deals and their status history, INSERT ... SELECT
generate_series) is put under the stack's deals service; the analytics read model
(``<prefix>_bench_analytics``) is rebuilt from it by RPC (the rebuild rate); funnel slices
are then timed through the gateway beside the same reads and maths run directly; last,
status changes are published at 500/s and the projection's lag is printed.  Scale:
``BENCH_ANALYTICS_DEALS`` (default 100,000; the goals are at 1,000,000).  Prints figures
beside their goals."""
from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests
from kombu import Connection, Producer
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bench.report import percentile, show, timed, verdict
from deploy.procfile import processes
from deploy.run import start_process, stop_all
from gateway.rpc import RpcClient
from services.analytics import domain, rebuild, store
from services.analytics.models import inbox
from services.kit.envelope import Envelope
from services.kit.messaging import event_exchange
from services.kit.migrate import drop_database, ensure_database, upgrade
from tests.support import infra
from tests.support.stack import PASSWORD, Stack, wait_for

DEALS = int(os.environ.get("BENCH_ANALYTICS_DEALS", 100_000))
REPEAT = int(os.environ.get("BENCH_REPEAT", 50))
RATE = int(os.environ.get("BENCH_ANALYTICS_RATE", 500))
SECONDS = int(os.environ.get("BENCH_ANALYTICS_SECONDS", 10))
# BENCH_ANALYTICS_ONLY=rebuild: measure the rebuild alone (skip the slices, exports and lag)
ONLY = os.environ.get("BENCH_ANALYTICS_ONLY", "")
# BENCH_ANALYTICS_SKIP=exports,lag: leave those parts out (the funnel slices alone)
SKIP = set(filter(None, os.environ.get("BENCH_ANALYTICS_SKIP", "").split(",")))
# BENCH_ANALYTICS_KEEP=1: keep the generated databases (their prefix is printed);
# BENCH_ANALYTICS_REUSE=<that prefix>: time the slices on them again, without the fill and
# the rebuild (for before/after runs back to back on one history)
KEEP = os.environ.get("BENCH_ANALYTICS_KEEP", "") == "1"
REUSE = os.environ.get("BENCH_ANALYTICS_REUSE", "")
# BENCH_ANALYTICS_REUSE_DEALS=<that prefix>: the kept deals database only, rebuilt into a
# fresh read model (the rebuild before and after a change, without generating it again)
REUSE_DEALS = os.environ.get("BENCH_ANALYTICS_REUSE_DEALS", "")
MANAGERS = 50
TZ = ZoneInfo("Europe/Moscow")

# each deal goes forward through the open statuses (depth g % 6: 0 = still new, 5 = won),
# and one in eleven that did not win is lost at its furthest status; a deal that got past
# "new" went back to it once and on again (FILL_RETURNS), so the history holds re-entries and
# more than the 5,000,000 transitions (1,000,000 creations and 4,242,425 status
# changes at 1,000,000 deals)
FILL_DEALS = """
INSERT INTO deals (id, name, client_id, client_name, status_id, type_id, stage_id,
                   manager_id, amount, expected_amount, budget, paid, outstanding, currency,
                   budget_revision, created_by, created_at, updated_at, closed_at, version,
                   loss_reason_id)
SELECT g, 'Сделка ' || g, g % 20000 + 1, 'Клиент ' || (g % 20000 + 1),
       CASE WHEN lost THEN (SELECT id FROM statuses WHERE code = 'lost')
            ELSE (SELECT id FROM statuses WHERE code = (CAST(:codes AS text[]))[depth + 1]) END,
       CASE WHEN g % 3 = 0 THEN :type_id END, NULL,
       (:managers)[g % :manager_count + 1], amt, amt, 0, 0, 0, 'RUB', 0, 1, made, made,
       CASE WHEN lost OR depth = 5 THEN made + (depth + 1) * interval '2 days' END,
       depth + 1 + lost::int + CASE WHEN depth >= 1 THEN 2 ELSE 0 END, CASE WHEN lost THEN 1 END
FROM generate_series(1::bigint, :deals) AS g
CROSS JOIN LATERAL (SELECT (g % 6)::int AS depth, (g % 11 = 0 AND g % 6 < 5) AS lost,
                           ((g * 104729) % 10000000)::numeric / 100 + 1000 AS amt,
                           now() - ((g * 37) % 26280) * interval '1 hour' AS made) AS v
"""
FILL_HISTORY = """
INSERT INTO deal_history (deal_id, field, old_value, new_value, user_id, changed_at)
SELECT d.id, 'status', (CAST(:codes AS text[]))[k],
       CASE WHEN k <= depth THEN (CAST(:codes AS text[]))[k + 1] ELSE 'lost' END, d.manager_id,
       d.created_at + k * interval '2 days'
FROM deals d
CROSS JOIN LATERAL (SELECT (d.id % 6)::int AS depth, (d.id % 11 = 0 AND d.id % 6 < 5) AS lost)
     AS v
CROSS JOIN LATERAL generate_series(1, depth + lost::int) AS k
"""
# the return to "new" and the second qualification, an hour and two after the first one
FILL_RETURNS = """
INSERT INTO deal_history (deal_id, field, old_value, new_value, user_id, changed_at)
SELECT d.id, 'status', r.old, r.new, d.manager_id,
       d.created_at + interval '2 days' + r.hours * interval '1 hour'
FROM deals d
CROSS JOIN (VALUES ('qualification', 'new', 1), ('new', 'qualification', 2)) AS r(old, new, hours)
WHERE d.id % 6 >= 1
"""
CODES = ["new", "qualification", "proposal", "negotiation", "contract", "won"]


def fill(url: str, managers: list[int], type_id: int) -> tuple[float, int]:
    started = time.monotonic()
    drop_database(url)
    ensure_database(url)
    upgrade("deals", url)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("ALTER TABLE deals DISABLE TRIGGER USER"))
            conn.execute(text(FILL_DEALS), {"deals": DEALS, "codes": CODES, "type_id": type_id,
                                            "managers": managers,
                                            "manager_count": len(managers)})
            conn.execute(text("INSERT INTO deal_totals (status_id, manager_key, deals, amount) "
                              "SELECT status_id, coalesce(manager_id, 0), count(*), sum(amount)"
                              " FROM deals GROUP BY 1, 2"))
            conn.execute(text("ALTER TABLE deals ENABLE TRIGGER USER"))
            conn.execute(text(FILL_HISTORY), {"codes": CODES})
            conn.execute(text(FILL_RETURNS))
            conn.execute(text("SELECT setval('deals_id_seq', :n)"), {"n": DEALS})
            conn.execute(text("VACUUM ANALYZE deals"))
            conn.execute(text("VACUUM ANALYZE deal_history"))
            moves = conn.execute(text("SELECT count(*) FROM deal_history")).scalar_one()
    finally:
        engine.dispose()
    return time.monotonic() - started, int(moves)


def restart(stack: Stack, name: str, prefix: str | None) -> None:
    stop_all([stack.procs.pop(name)])
    if prefix is None:
        stack.start(name)
    else:
        log = open(stack.logs / f"{stack.prefix}-{name}-bench.log", "ab")  # noqa: SIM115
        stack.procs[name] = start_process(processes()[name],
                                          {**stack.env, "DB_PREFIX": prefix}, log)
    stack.wait_healthy(timeout=120)


def goal(name: str, value: str, target: str, ok: bool | None = None) -> None:
    verdict_ = "" if ok is None else ("   ok" if ok else "   short")
    print(f"{name:<52} {value:>22}   goal {target}{verdict_}", flush=True)


# Paced at RATE/s, the projection can apply at most what is published: the last events are
# applied a moment after they were sent, so the rate over publishing and catching up is a
# little under RATE even for a projection that keeps up.  Keeping up is that rate within 2 %
# of RATE, with the backlog and the catch-up each under a second (printed below it).
KEEPS_UP = 0.98


def direct(url: str, filters: dict[str, Any], statuses: list[dict[str, Any]]) -> list[float]:
    """The service's reads and maths for one slice, without RPC and HTTP."""
    engine = create_engine(url, pool_size=2)
    layers, kinds = domain.funnel_layers(statuses)
    type_ids = [int(filters["type_id"])] if filters.get("type_id") else []
    parsed = domain.parse_filters(filters, datetime.now(TZ).date(), type_ids=type_ids,
                                  manager_ids=None, departments=())
    try:
        with Session(engine) as db:
            def once() -> None:
                # as the service runs them: the medians on a second session beside the rest
                rows, _ = store.figures(db, parsed, TZ, None, layers, kinds, store.utcnow(),
                                        beside=lambda: Session(engine))
                domain.snapshot(rows, store.now_in_layers(db, parsed, None, False))
                store.revenue(db, parsed, TZ, None)
            return timed(once, REPEAT, warmup=2)
    finally:
        engine.dispose()


def read_alone(client: RpcClient, page: int = 10_000) -> float:
    """Deals/s of the history pages asked and received without writing them: what the
    rebuild could reach if writing cost nothing."""
    after, done, started = None, 0, time.monotonic()
    while True:
        answer = client.call("deals", "history_columns", after=after, limit=page)
        done += len(answer["deals"]["id"])
        after = answer["next_after"]
        if after is None:
            return done / (time.monotonic() - started)


def inbox_alone(url: str, total: int, batch: int = 200) -> float:
    """Rows/s of the inbox claims alone, in the consumer's batches with a commit each: the
    floor under the projection (its claims and commits without the projection's SQL)."""
    engine = create_engine(url)
    handler = "bench.inbox_alone"
    try:
        started = time.monotonic()
        with engine.connect() as conn:
            for first in range(0, total, batch):
                conn.execute(inbox.insert(), [
                    {"handler": handler, "event_id": Envelope.new("x", {}).event_id,
                     "type": "x"} for _ in range(min(batch, total - first))])
                conn.commit()
        rate = total / (time.monotonic() - started)
        with engine.begin() as conn:
            conn.execute(inbox.delete().where(inbox.c.handler == handler))
        return rate
    finally:
        engine.dispose()


WIN_RATE = "analytics.learn_outcome"


def _applied(engine: Any, handler: str = "analytics.on_deal_status_changed") -> int:
    """Status changes the funnel's projection applied (other handlers of the same event,
    the win-rate model's ``analytics.learn_outcome``, have inbox rows of their own)."""
    with Session(engine) as db:
        return int(db.scalar(select(func.count()).select_from(inbox).where(
            inbox.c.handler == handler)) or 0)


def _publish(stack: Stack, engine: Any, count: int, first: int, rate: int | None
             ) -> tuple[float, list[float]]:
    """Publish ``count`` status changes (versions from ``first``), at ``rate``/s or as fast
    as possible; returns when publishing started and the backlog (s) at each second."""
    before, started = _applied(engine), time.monotonic()
    behind: list[float] = []
    with Connection(stack.env["AMQP_URI"]) as conn:
        producer = Producer(conn.default_channel, exchange=event_exchange("deals"))
        for i in range(count):
            body = Envelope.new("deal_status_changed", {
                "deal_id": i % DEALS + 1, "client_id": 1, "manager_id": 1, "type_id": None,
                "from_status": "new", "to_status": "qualification", "to_status_kind": "open",
                "from_stage": None, "to_stage": None, "amount": "1000.00",
                "version": first + i, "changed_at": datetime.now(UTC).isoformat()}).to_dict()
            producer.publish(body, routing_key="deal_status_changed", serializer="json",
                             declare=[event_exchange("deals")])
            if rate is None:
                continue
            pause = started + (i + 1) / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if i % rate == rate - 1:
                behind.append((i + 1 - (_applied(engine) - before)) / rate)
    return started, behind


def lag(stack: Stack, url: str) -> None:
    """Publish status changes at RATE/s for SECONDS s; how far behind is the projection?
    Then a burst published unpaced: how fast does it apply a backlog?"""
    engine = create_engine(url)
    total = RATE * SECONDS
    try:
        before = _applied(engine)
        learnt = _applied(engine, WIN_RATE) + total
        started, behind = _publish(stack, engine, total, 1000, RATE)
        published = time.monotonic()
        wait_for(lambda: _applied(engine) - before >= total, timeout=600,
                 message="the projection to catch up")
        caught = time.monotonic()
        wait_for(lambda: _applied(engine, WIN_RATE) >= learnt, timeout=600,
                 message="the win-rate handler to catch up")
        win_rate_caught = time.monotonic()
        verdict(f"projection at {RATE} status changes/s for {SECONDS} s",
                total / (caught - started), "/s applied", floor=total / (published - started),
                floor_name="published", goal=KEEPS_UP * RATE,
                goal_text=f">= {KEEPS_UP:.0%} of {RATE}")
        goal("  lag at the end of publishing (backlog / rate)",
             f"{max(behind or [0]):.2f} s max", "keeps up (< 1 s)", max(behind or [0]) < 1)
        goal("  caught up after the last event", f"{caught - published:.2f} s", "< 1 s",
             caught - published < 1)
        # the win-rate model learns from the same events in the same process: the service
        # keeps up only when it too is through
        goal("  the win-rate handler caught up after the last event",
             f"{win_rate_caught - published:.2f} s", "< 1 s", win_rate_caught - published < 1)
        before = _applied(engine)
        learnt = _applied(engine, WIN_RATE) + total
        started, _ = _publish(stack, engine, total, 1000 + total, None)
        wait_for(lambda: _applied(engine) - before >= total, timeout=600,
                 message="the projection to apply the burst")
        applied = time.monotonic()
        wait_for(lambda: _applied(engine, WIN_RATE) >= learnt, timeout=600,
                 message="the win-rate handler to learn the burst")
        win_rate_done = time.monotonic()
        verdict("projection flat out (a burst published unpaced)",
                total / (applied - started), "/s applied",
                floor=inbox_alone(url, total), floor_name="inbox rows alone, 200 a commit",
                goal=RATE)
        # flat out it shares the process's CPU with the projection: its rate over the
        # whole burst says whether it keeps up with the 500 changes a second
        goal("  the win-rate handler flat out (the same burst)",
             f"{total / (win_rate_done - started):,.0f} /s learnt "
             f"({win_rate_done - applied:.2f} s after the projection)", f">= {RATE} /s",
             total / (win_rate_done - started) >= RATE)
    finally:
        engine.dispose()


def run(stack: Stack) -> None:
    anna = stack.ok("GET", "/me")["id"]
    managers = [anna, *range(10_000, 10_000 + MANAGERS - 1)]
    support = next(t["id"] for t in stack.ok("GET", "/deal-types") if not t.get("stages"))
    prefix = REUSE or REUSE_DEALS or f"{stack.prefix}_bench"
    deals_url, analytics_url = (f"{infra.PG_BASE}/{prefix}_deals",
                                f"{infra.PG_BASE}/{prefix}_analytics")
    if REUSE:
        print(f"reusing the databases {prefix}_* (BENCH_ANALYTICS_REUSE)", flush=True)
        upgrade("analytics", analytics_url)
    else:
        if REUSE_DEALS:
            print(f"reusing the deals database {prefix}_deals (BENCH_ANALYTICS_REUSE_DEALS)",
                  flush=True)
        else:
            print(f"loading {DEALS:,} deals with their status history into {prefix}_* ...",
                  flush=True)
            seconds, moves = fill(deals_url, managers, support)
            print(f"loaded in {seconds:.0f} s: {DEALS:,} deals, {moves:,} status changes "
                  f"({DEALS + moves:,} transitions with the creations)", flush=True)
        drop_database(analytics_url)
        ensure_database(analytics_url)
        upgrade("analytics", analytics_url)
    restart(stack, "deals", prefix)
    restart(stack, "analytics", prefix)
    client = RpcClient(stack.env["AMQP_URI"], timeout=120, name="bench-rebuild")
    engine = create_engine(analytics_url, pool_size=2)
    try:
        if not REUSE:
            _rebuilt(client, engine, stack.procs["deals"].pid, prefix)
        if ONLY == "rebuild":
            return
        _slices(stack, client, engine, analytics_url, anna, support)
        if "lag" not in SKIP:
            lag(stack, analytics_url)
    finally:
        client.close()
        engine.dispose()
        restart(stack, "analytics", None)
        restart(stack, "deals", None)
        if KEEP or REUSE or REUSE_DEALS:
            print(f"(kept the databases {prefix}_deals and {prefix}_analytics)", flush=True)
        else:
            drop_database(analytics_url)
            drop_database(deals_url)


def _cpu_seconds(pid: int) -> float:
    """A process's CPU so far (user and system); 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_by_part(engine: Any, deals_pid: int, databases: dict[str, str]) -> dict[str, float]:
    """CPU so far of the PostgreSQL backends of each database (by name), of the deals
    service and of this process (the rebuild's Python)."""
    with engine.connect() as conn:
        backends = conn.execute(text("SELECT datname, pid FROM pg_stat_activity"
                                     " WHERE datname = ANY(:names)"),
                                {"names": list(databases.values())}).all()
    parts = {part: sum(_cpu_seconds(pid) for name, pid in backends if name == database)
             for part, database in databases.items()}
    return {**parts, "the deals service": _cpu_seconds(deals_pid),
            "the rebuild (this process)": _cpu_seconds(os.getpid())}


def _rebuilt(client: RpcClient, engine: Any, deals_pid: int, prefix: str) -> None:
    """The read model rebuilt by RPC from the deals' history, timed, with the CPU each part
    spent (the box has two cores: the sum over the wall time says how close it ran to
    them)."""
    databases = {"analytics backends": f"{prefix}_analytics",
                 "deals backends": f"{prefix}_deals"}
    before = _cpu_by_part(engine, deals_pid, databases)
    started = time.monotonic()
    replayed = rebuild.rebuild(client.call, sessionmaker(engine))
    took = time.monotonic() - started
    after = _cpu_by_part(engine, deals_pid, databases)
    print(f"(rebuild of {replayed:,} deals took {took:.0f} s)", flush=True)
    spent = {part: after[part] - before.get(part, 0.0) for part in after}
    print("(CPU during the rebuild: " + ", ".join(
        f"{part} {seconds:.1f} s" for part, seconds in spent.items())
        + f"; {sum(spent.values()) / took:.2f} cores of 2 over its wall time)", flush=True)
    print(f"(load average during the rebuild: {os.getloadavg()[0]:.2f})", flush=True)
    verdict("rebuild by RPC", replayed / took, "deals/s", floor=read_alone(client),
            floor_name="the pages read alone", goal=20_000)
    print(f"(load average after the pages read alone: {os.getloadavg()[0]:.2f})",
          flush=True)

def _slices(stack: Stack, client: RpcClient, engine: Any, analytics_url: str, anna: int,
            support: int) -> None:
    """Each funnel slice through the gateway beside the same reads directly; the exports."""
    # as ``python -m services.analytics.rebuild`` leaves the read model after a rebuild
    store.settle(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE transitions"))
    statuses = client.call("deals", "list_statuses")
    head = stack.token("head")
    today = date.today()
    slices = {
        "last 90 days, everyone": {},
        "last 90 days, one manager": {"manager_id": str(anna)},
        "last 90 days, one type": {"type_id": str(support)},
        "last 30 days closed, everyone": {"basis": "closed",
                                           "start": str(today - timedelta(days=29))},
    }
    floors: dict[str, float] = {}
    for label, filters in slices.items():
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        api = f"{stack.url}/api/v1/analytics/funnel?{query}"
        try:
            through = timed(lambda a=api: requests.get(
                a, headers={"Authorization": f"Bearer {head}"}, timeout=60)
                .raise_for_status(), REPEAT, warmup=2)
        except requests.HTTPError as exc:
            goal(f"funnel {label}: through the gateway", str(exc)[:22], "≤ 300 ms")
            continue
        alone = direct(analytics_url, filters, statuses)
        show(f"funnel {label}: through the gateway", through)
        show(f"funnel {label}: same SQL + maths directly", alone)
        verdict(f"  p99 {label}", percentile(through, 99), "ms",
                floor=percentile(alone, 99), floor_name="same SQL directly", goal=300,
                higher_is_better=False)
        floors.setdefault("funnel", statistics.median(through))
    web = requests.Session()
    web.post(f"{stack.url}/login", data={"username": "head", "password": PASSWORD},
             timeout=10).raise_for_status()
    for kind in () if "exports" in SKIP else ("pdf", "xlsx"):
        export = f"{stack.url}/analytics/export.{kind}"
        try:
            samples = timed(lambda e=export: web.get(e, timeout=120).raise_for_status(),
                         max(3, REPEAT // 10), warmup=1)
        except requests.HTTPError as exc:
            goal(f"export {kind.upper()}", str(exc)[:22], "< 3 s")
            continue
        verdict(f"export {kind.upper()}, 90 days, everyone (median)",
                statistics.median(samples) / 1000, "s",
                floor=floors.get("funnel", 0) / 1000,
                floor_name="the funnel's JSON", goal=3, higher_is_better=False,
                goal_text="< 3")
