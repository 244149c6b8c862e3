"""Reconciliation at scale: a 100,000-transaction 1CClientBankExchange file against
1,000,000 planned payments, through a real payments service process (its import worker,
its database), beside parsing the same file alone; and the peak memory of that process,
which must stream the file rather than hold it.

The service runs on a database and RabbitMQ virtual host of its own (its events go
nowhere), so the figures are the import's and not the other services' reactions to
100,000 receipts.  By default 20,000 transactions against 200,000 planned payments (about
two minutes); BENCH_PAYMENTS_FULL=1 runs the 100,000 / 1,000,000 of the goal, and
BENCH_PAYMENTS_TRANSACTIONS / BENCH_PAYMENTS_PLANNED set any size.
BENCH_PAYMENTS_PROFILE=1 samples the service with py-spy during the import.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.profile import Profile
from bench.report import spread, verdict
from deploy.run import start_process, stop_all
from gateway.rpc import RpcClient
from services.kit.migrate import drop_database, ensure_database, upgrade
from services.payments.feeds import Transaction, parse_statement, write_1c_statement
from services.payments.feeds.textio import detect_encoding, line_blocks, peek, text_blocks
from tests.support import infra

NEEDS_STACK = False  # runs its own payments service on its own database
ROOT = Path(__file__).resolve().parents[1]
PARSE_REPEAT = 3
GOAL_PARSE, GOAL_RECONCILE = 100_000, 20_000  # tx/s
OUR_ACCOUNT = "40702810900000000001"
BASE_DUE = date(2025, 1, 1)
DUE_SPREAD = 730  # days: plans run over two years
CLIENTS, DEALS_PER_CLIENT, MANAGERS = 50_000, 5, 20


# --- the data: the same formulas in SQL (planned payments) and Python (the statement) ----

def inn_of_client(client_id: int) -> str:
    return f"77{client_id:08d}"


def amount_of(payment_id: int) -> Decimal:
    return Decimal(1000 + (payment_id % 997) * 10) + Decimal(payment_id % 100) / 100


def due_of(payment_id: int) -> date:
    return BASE_DUE + timedelta(days=payment_id % DUE_SPREAD)


def client_of(payment_id: int, deals: int) -> int:
    deal_id = payment_id % deals + 1
    return (deal_id - 1) % CLIENTS + 1


LOAD = [
    "INSERT INTO client_refs (client_id, name, inn, manager_id, updated_at) "
    "SELECT i, 'Клиент ' || i, '77' || lpad(i::text, 8, '0'), i % {managers} + 1, now() "
    "FROM generate_series(1, {clients}) AS i",
    "INSERT INTO deal_refs (deal_id, name, client_id, manager_id, status, version, updated_at)"
    " SELECT i, 'Сделка ' || i, (i - 1) % {clients} + 1, i % {managers} + 1, 'open', 1, now()"
    " FROM generate_series(1, {deals}) AS i",
    "INSERT INTO planned_payments (id, deal_id, amount, currency, due_date, invoice_number, "
    "invoice_key, received_amount, outstanding, status, created_at, version) "
    "SELECT i, i % {deals} + 1, 1000 + (i % 997) * 10 + (i % 100) / 100.0, 'RUB', "
    "DATE '{base}' + (i % {spread}), 'INV-' || i, 'INV-' || i, 0, "
    "1000 + (i % 997) * 10 + (i % 100) / 100.0, 'planned', now(), 1 "
    "FROM generate_series(1, {planned}) AS i",
    "SELECT setval(pg_get_serial_sequence('planned_payments', 'id'), {planned})",
    f"INSERT INTO own_accounts (account, name, created_at) VALUES ('{OUR_ACCOUNT}', 'bench', "
    "now())",
    "ANALYZE",
]


def load(url: str, planned: int) -> float:
    deals = max(1, planned // 4)
    started = time.monotonic()
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in LOAD:
            conn.execute(text(statement.format(managers=MANAGERS, clients=CLIENTS, deals=deals,
                                               planned=planned, base=BASE_DUE.isoformat(),
                                               spread=DUE_SPREAD)))
    engine.dispose()
    return time.monotonic() - started


def transactions(count: int, planned: int) -> list[Transaction]:
    """70 % pay a planned payment exactly (named invoice, the client's INN), 20 % pay part
    of one (doubtful), 10 % are nobody's (unmatched)."""
    deals = max(1, planned // 4)
    stride = max(1, planned // count)
    found = []
    for k in range(count):
        payment_id = k * stride + 1
        day = due_of(payment_id) + timedelta(days=k % 5)
        kind = k % 10
        if kind < 7:
            inn, amount = inn_of_client(client_of(payment_id, deals)), amount_of(payment_id)
            purpose = f"Оплата по счету № INV-{payment_id} от {due_of(payment_id):%d.%m.%Y}"
        elif kind < 9:
            inn = inn_of_client(client_of(payment_id, deals))
            amount = amount_of(payment_id) - 100
            purpose = f"Частичная оплата по счету № INV-{payment_id}"
        else:
            inn, amount, purpose = "9909000012", Decimal("7.77") + k % 500, "Возврат депозита"
        found.append(Transaction(
            own_account=OUR_ACCOUNT, date=day, number=str(100000 + k), amount=amount,
            direction="credit", payer_name=f"ООО Плательщик {k}", payer_inn=inn,
            payer_account="40702810100000000009", payee_name="ООО Мы", payee_inn="7700000000",
            purpose=purpose))
    return found


# --- measuring ----------------------------------------------------------------------------

def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def read_alone(path: Path, blocks: Any = line_blocks) -> float:
    """The parser's floor: the same bytes read, decoded and split into lines, no more
    (``text_blocks``: read and decoded, as the 1C parser takes them)."""
    started = time.monotonic()
    with path.open("rb") as stream:
        head, reader = peek(stream)
        for _ in blocks(reader, detect_encoding(head)):
            pass
    return time.monotonic() - started


def parse_memory(path: Path) -> float:
    """The peak of the Python memory parsing the file takes (MB), on top of what was
    there: the parser holds a block of the file and a hash per record, never the file."""
    tracemalloc.start()
    try:
        parse_alone(path)
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def parse_alone(path: Path) -> tuple[float, int]:
    started = time.monotonic()
    count = 0
    with path.open("rb") as stream:
        for record in parse_statement(stream, path.name):
            count += isinstance(record, Transaction)
    return time.monotonic() - started, count


def copy_alone(url: str, records: list[Transaction]) -> float:
    """The staging floor: the same rows COPied into a temporary table, nothing else."""
    engine = create_engine(url)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        started = time.monotonic()
        with raw.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE copy_floor (number text, booked_on date, "
                           "amount numeric(18, 2), payer_inn text, purpose text)")
            with cursor.copy("COPY copy_floor FROM STDIN") as copy:
                for r in records:
                    copy.write_row((r.number, r.date, r.amount, r.payer_inn, r.purpose))
        seconds = time.monotonic() - started
        conn.rollback()
    engine.dispose()
    return seconds


def wait_import(rpc: RpcClient, job_id: int, pid: int) -> tuple[dict[str, Any], int]:
    peak_rss = 0
    while True:
        job = rpc.call("payments", "get_import", job_id)
        peak_rss = max(peak_rss, status_kb(pid, "VmRSS"))
        if job["status"] in ("done", "failed"):
            return job, peak_rss
        time.sleep(0.25)  # a benchmark polls; tests never sleep


def warm_up(rpc: RpcClient, uploads: Path, work: Path, pid: int) -> None:
    """A small import of nobody's payments before the measured one: a service's first
    import loads code and fills caches once, which is no growth with the file (and pays
    no planned payment, so the measured import decides as it would alone)."""
    path = work / "warm-up.txt"
    write_1c_statement(path, [Transaction(
        own_account=OUR_ACCOUNT, date=BASE_DUE, number=f"W{k}", amount=Decimal("7.77") + k,
        direction="credit", payer_name="ООО Прогрев", payer_inn="9909000012",
        payer_account="40702810100000000009", payee_name="ООО Мы", payee_inn="7700000000",
        purpose="Возврат депозита") for k in range(100)])
    done, _ = wait_import(rpc, submit(rpc, uploads, path)["id"], pid)
    if done["status"] != "done":
        raise SystemExit(f"the warm-up import failed: {done['error']}")


def submit(rpc: RpcClient, uploads: Path, source: Path) -> dict[str, Any]:
    stored = uuid.uuid4().hex
    shutil.copyfile(source, uploads / stored)
    return rpc.call("payments", "create_import", {"stored_name": stored,
                                                  "filename": source.name})


def run(stack: Any = None) -> None:
    full = os.environ.get("BENCH_PAYMENTS_FULL", "") not in ("", "0")
    count = int(os.environ.get("BENCH_PAYMENTS_TRANSACTIONS", 100_000 if full else 20_000))
    planned = int(os.environ.get("BENCH_PAYMENTS_PLANNED", 1_000_000 if full else 200_000))
    profiling = os.environ.get("BENCH_PAYMENTS_PROFILE", "") not in ("", "0")
    prefix = f"crm_bench_{uuid.uuid4().hex[:8]}"
    url = f"{infra.PG_BASE}/{prefix}_payments"
    vhost = infra.create_vhost()
    work = Path(tempfile.mkdtemp(prefix="crm-bench-payments-"))
    proc: subprocess.Popen[bytes] | None = None
    rpc: RpcClient | None = None
    try:
        ensure_database(url)
        upgrade("payments", url)
        seconds = load(url, planned)
        print(f"{planned:,} planned payments ({planned // 4:,} deals, {CLIENTS:,} clients) "
              f"loaded in {seconds:.1f} s", flush=True)

        statement = work / "vypiska.txt"
        started = time.monotonic()
        records = transactions(count, planned)
        write_1c_statement(statement, records)
        size = statement.stat().st_size
        print(f"1C statement: {count:,} transactions, {size / 1e6:.1f} MB, written in "
              f"{time.monotonic() - started:.1f} s", flush=True)
        reads = [count / read_alone(statement) for _ in range(PARSE_REPEAT)]
        decodes = [count / read_alone(statement, text_blocks) for _ in range(PARSE_REPEAT)]
        parses = []
        for _ in range(PARSE_REPEAT):
            seconds_, parsed = parse_alone(statement)
            assert parsed == count
            parses.append(count / seconds_)
        parse_rate = statistics.median(parses)
        print(f"parse alone, {PARSE_REPEAT} runs: {spread(parses)} tx/s; read+decode+split "
              f"alone: {spread(reads)} tx/s; read+decode alone: {spread(decodes)} tx/s",
              flush=True)
        parse_peak = parse_memory(statement)
        copies = [count / copy_alone(url, records) for _ in range(PARSE_REPEAT)]
        del records
        print(f"COPY of the rows alone: {spread(copies)} tx/s", flush=True)

        env = {**os.environ, "DB_PREFIX": prefix, "AMQP_URI": infra.amqp_uri(vhost),
               "STATEMENTS_DIR": str(work / "statements"), "IMPORT_POLL_SECONDS": "0.2",
               "STATEMENTS_MAX_BYTES": str(max(size * 2, 50 * 1024 * 1024)),
               "OUTBOX_SWEEP_SECONDS": "2", "PYTHONUNBUFFERED": "1"}
        uploads = work / "statements" / "uploads"
        uploads.mkdir(parents=True)
        log = (work / "payments.log").open("wb")
        proc = start_process("python -m services.kit.runner payments", env, log)
        rpc = RpcClient(infra.amqp_uri(vhost), timeout=10, name="bench")
        infra.wait_until(lambda: _healthy(rpc), timeout=60, interval=0.3,
                         message="the payments service")
        fresh_rss = status_kb(proc.pid, "VmRSS")
        warm_up(rpc, uploads, work, proc.pid)
        idle_rss = status_kb(proc.pid, "VmRSS")

        profile = Profile(proc.pid, 600, "payments") if profiling else None
        started = time.monotonic()
        job = submit(rpc, uploads, statement)
        done, peak_rss = wait_import(rpc, job["id"], proc.pid)
        wall = time.monotonic() - started
        if profile is not None:
            profile.finish()
            profile.top()
        if done["status"] != "done":
            raise SystemExit(f"the import failed: {done['error_location']}: {done['error']}")
        result = done["result"]
        inside = float(result["seconds"])
        print(f"reconcile: {inside:.1f} s in the worker ({wall:.1f} s upload to done) = "
              f"{count / inside:,.0f} tx/s; matched {result['matched']:,}, review "
              f"{result['review']:,}, unmatched {result['unmatched']:,}, budgets of "
              f"{result['deals']:,} deals", flush=True)
        timings = result["timings"]
        print("phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()),
              flush=True)
        print("split (s): " + ", ".join(f"{k} {v:.2f}" for k, v in split(timings).items()),
              flush=True)
        sql = timings.get("matching: evidence SQL", 0.0)
        hwm = status_kb(proc.pid, "VmHWM")
        print(f"payments process memory: idle {idle_rss / 1024:.0f} MB after a first small "
              f"import ({(idle_rss - fresh_rss) / 1024:.1f} MB more than fresh: code and "
              f"caches, once), peak (VmHWM) {hwm / 1024:.0f} MB for a {size / 1e6:.0f} MB file",
              flush=True)
        verdict("1C parse alone", parse_rate, "tx/s", floor=statistics.median(reads),
                floor_name="read+decode+split", goal=GOAL_PARSE)
        verdict("reconcile, upload to done", count / wall, "tx/s", floor=parse_rate,
                floor_name="parse alone", goal=GOAL_RECONCILE)
        verdict("reconcile, upload to done (vs COPY)", count / wall, "tx/s",
                floor=statistics.median(copies), floor_name="COPY alone", goal=GOAL_RECONCILE)
        if sql:
            verdict("reconcile, upload to done (vs its SQL)", count / wall, "tx/s",
                    floor=count / sql, floor_name="evidence SQL alone", goal=GOAL_RECONCILE)
        verdict("payments memory growth during the import", (hwm - idle_rss) / 1024, "MB",
                floor=size / 1e6, floor_name="file size", goal=size / 2e6,
                higher_is_better=False, goal_text="<= half the file size,")
        verdict("1C parse alone, peak Python memory", parse_peak, "MB", floor=size / 1e6,
                floor_name="file size", goal=size / 2e6, higher_is_better=False,
                goal_text="<= half the file size,")

        started = time.monotonic()
        again, _ = wait_import(rpc, submit(rpc, uploads, statement)["id"], proc.pid)
        print(f"re-import of the same file: {time.monotonic() - started:.1f} s, "
              f"new {again['result']['new']}, duplicates {again['result']['duplicates']:,}",
              flush=True)
    finally:
        if rpc is not None:
            rpc.close()
        if proc is not None:
            stop_all([proc], grace=10)
        drop_database(url)
        infra.delete_vhost(vhost)
        shutil.rmtree(work, ignore_errors=True)


def split(timings: dict[str, float]) -> dict[str, float]:
    """The import's phases as the goal speaks of them: parse (reading the file less its
    COPY), stage (COPY, de-duplication), match (keys, evidence, rules), apply (results,
    payments and transactions written with their decisions, the paid ones locked),
    outbox (receipts with their payment_received rows, budgets)."""
    t = timings.get
    copy = t("reading: COPY", 0.0)
    return {
        "parse": t("reading", 0.0) - copy,
        "stage": copy + t("deduplicating", 0.0),
        "match": t("matching: keys", 0.0) + t("matching: evidence SQL", 0.0)
        + t("matching: rules", 0.0),
        "apply": t("matching: lock", 0.0) + t("matching: results COPY", 0.0)
        + t("matching: transactions UPDATE", 0.0) + t("matching: payments UPDATE", 0.0)
        + t("matching: transactions INSERT", 0.0),
        "outbox": t("matching: receipts+outbox INSERT", 0.0) + t("budgets", 0.0),
    }


def _healthy(rpc: RpcClient) -> bool:
    try:
        return rpc.call("payments", "health", timeout=2)["status"] == "ok"
    except Exception:
        return False


if __name__ == "__main__":  # python -m bench.payments: this benchmark alone, no full stack
    sys.exit(run())
