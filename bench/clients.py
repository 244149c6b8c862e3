"""Client search at scale (issue #3): 200 000 clients with 400 000 contacts, generated
straight into the clients database of the benchmark's own stack (created and migrated by
deploy.bootstrap with services.kit.migrate, dropped afterwards), then a name search (whole
names, parts shared by a hundred, and the short and common fragments people type first:
"а", "ом", "ооо", "12"), an INN lookup and a phone search through the gateway API, and
the client list's HTML page filtered by an RFM segment (the column analytics' events
fill), each beside the queries the service runs for it, timed in-process on the same
database (the floor).  The ratio is the figure to watch: it is what the gateway, the
broker and the service add on top of the database.

`python -m bench clients` (with the other benchmarks: `make bench`), or
`python -m bench.clients` on its own.  ``BENCH_CLIENTS_REPEAT`` requests of each search
(default 300), ``BENCH_REPEAT`` pages of the segment list (default 50).
"""
from __future__ import annotations

import os
import random
import statistics
import sys
import time
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from bench.deals import web_session
from bench.report import compare, show, timed
from gateway.rpc import RpcClient
from services.clients import store
from services.clients.domain.listing import parse_list_query
from tests.support.stack import Stack

CLIENTS = 200_000
CONTACTS_PER_CLIENT = 2
REPEAT = int(os.environ.get("BENCH_CLIENTS_REPEAT", 300))
SEGMENT_REPEAT = int(os.environ.get("BENCH_REPEAT", 50))
SEED = 20261123

# Company names people search for: a legal form, one or two words, a number.
FORMS = ["ООО", "АО", "ПАО", "ИП", "ЗАО"]
WORDS = ["Ромашка", "Север", "Вектор", "Альфа", "Гранит", "Меридиан", "Техно", "Строй",
         "Логистик", "Агро", "Фарм", "Сибирь", "Волга", "Урал", "Балтика", "Энерго",
         "Инвест", "Партнёр", "Сервис", "Торг", "Стандарт", "Прогресс", "Импульс", "Квант",
         "Орион", "Пульсар", "Феникс", "Атлант", "Монолит", "Ресурс", "Капитал", "Профи",
         "Мастер", "Эксперт", "Лидер", "Гарант", "Союз", "Восток", "Запад", "Юг"]
CITIES = ["Москва", "Санкт-Петербург", "Казань", "Новосибирск", "Екатеринбург",
          "Нижний Новгород", "Самара", "Омск", "Ростов-на-Дону", "Уфа"]
FIRST_INN = 7_700_000_000
SHORT_FRAGMENTS = ["а", "ом", "ооо", "12", "сев", "ъ", "7", "ромашка"]


def sql_array(values: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def generate(engine: Engine, count: int = CLIENTS) -> float:
    """Insert ``count`` clients with their contacts and phones (INSERT ... SELECT);
    returns seconds."""
    started = time.monotonic()
    with engine.begin() as db:
        base = int(db.execute(text("SELECT coalesce(max(id), 0) FROM clients")).scalar() or 0)
        contact_base = int(db.execute(text("SELECT coalesce(max(id), 0) FROM contacts"))
                           .scalar() or 0)
        phone_base = int(db.execute(text("SELECT coalesce(max(id), 0) FROM contact_phones"))
                         .scalar() or 0)
        db.execute(text(f"""
            INSERT INTO clients (id, number, kind, name, search_name, inn, requisites, city,
                                 manager_id, created_by, created_at, updated_at, version,
                                 main_phone)
            SELECT :base + g, nextval('client_number_seq'), 'legal', n.name,
                   replace(lower(n.name), 'ё', 'е'), n.inn,
                   jsonb_build_object('inn', n.inn), c.city, 1 + abs(hashtext(g::text)) % 10, 1,
                   now() - (g % 730) * interval '1 day', now(), 1,
                   -- the first phone of the first contact, as the phones below are made
                   CASE WHEN ((g - 1) * :per + 1) % 5 = 0 THEN '+7495' ELSE '+7916' END
                   || lpad(((g - 1) * :per + 1)::text, 7, '0')
            FROM generate_series(1, :count) AS g
            CROSS JOIN LATERAL (SELECT
                ({sql_array(FORMS)})[1 + g % {len(FORMS)}] || ' «' ||
                ({sql_array(WORDS)})[1 + (g / 7) % {len(WORDS)}] || ' ' ||
                ({sql_array(WORDS)})[1 + (g / 311) % {len(WORDS)}] || ' ' || g AS name,
                ({FIRST_INN} + g)::text AS inn) AS n
            CROSS JOIN LATERAL (SELECT
                ({sql_array(CITIES)})[1 + abs(hashtext('city' || g)) % {len(CITIES)}]
                AS city) AS c
        """), {"base": base, "count": count, "per": CONTACTS_PER_CLIENT})
        db.execute(text("""
            INSERT INTO contacts (id, client_id, name, position, created_at)
            SELECT :cbase + g, :base + 1 + (g - 1) / :per, 'Контакт ' || g, 'Менеджер', now()
            FROM generate_series(1, :count) AS g
        """), {"cbase": contact_base, "base": base, "per": CONTACTS_PER_CLIENT,
               "count": count * CONTACTS_PER_CLIENT})
        db.execute(text("""
            INSERT INTO contact_phones (id, contact_id, e164)
            SELECT :pbase + g, :cbase + g,
                   CASE WHEN g % 5 = 0 THEN '+7495' ELSE '+7916' END || lpad(g::text, 7, '0')
            FROM generate_series(1, :count) AS g
        """), {"pbase": phone_base, "cbase": contact_base,
               "count": count * CONTACTS_PER_CLIENT})
        for table in ("clients", "contacts", "contact_phones"):
            db.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        db.execute(text("VACUUM ANALYZE clients, contacts, contact_phones"))
    return time.monotonic() - started


def searches(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """REPEAT requests of each kind, for clients that exist (and a few name parts shared
    by thousands, as people type them)."""
    def client_no() -> int:
        return rng.randrange(1, CLIENTS + 1)

    def phone(contact_no: int) -> str:
        digits = ("495" if contact_no % 5 == 0 else "916") + f"{contact_no:07d}"
        return f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}"

    names = []
    for i in range(REPEAT):
        g = client_no()
        word = WORDS[(g // 7) % len(WORDS)].lower()
        if i % 6 == 5:  # what people type first: one or two letters, a common part
            names.append({"name": SHORT_FRAGMENTS[(i // 6) % len(SHORT_FRAGMENTS)]})
        elif i % 3 == 0:
            names.append({"name": f"{word[1:]} {WORDS[(g // 311) % len(WORDS)][:4].lower()}"})
        else:
            names.append({"name": f"{word} {WORDS[(g // 311) % len(WORDS)]} {g}"})
    return {
        "name search": names,
        "INN lookup": [{"inn": str(FIRST_INN + client_no())} for _ in range(REPEAT)],
        "phone search (8 (916) ... format)": [
            {"phone": phone(rng.randrange(1, CLIENTS * CONTACTS_PER_CLIENT + 1))}
            for _ in range(REPEAT)],
    }


def in_process(engine: Engine, requests_of: list[dict[str, Any]], repeat: int) -> list[float]:
    """Milliseconds of the queries the service runs for these filters (store.list_page:
    the same statements, plans and rows), on one connection in this process."""
    queries = [parse_list_query("", filters) for filters in requests_of]
    position = iter(range(10**9))
    with Session(engine) as db:
        def direct() -> None:
            store.list_page(db, queries[next(position) % len(queries)], True)  # type: ignore[arg-type]

        return timed(direct, repeat)


def measure(stack: Stack, engine: Engine, rpc: RpcClient, requests_of: list[dict[str, Any]]
            ) -> tuple[list[float], list[float], list[float], list[int]]:
    """Milliseconds through the API, through RPC to the service, and of the SQL alone."""
    queue = list(requests_of)
    totals: list[int] = []

    def through_api() -> None:
        params = queue[len(totals) % len(queue)]
        totals.append(stack.ok("GET", "/clients", params=params)["total"])

    api = timed(through_api, len(queue), warmup=5)
    asked = iter(range(10**9))
    service = timed(lambda: rpc.call("clients", "search_clients", "",
                                     filters=queue[next(asked) % len(queue)]),
                    len(queue), warmup=5)
    return api, service, in_process(engine, queue, len(queue)), totals


def report(stack: Stack, engine: Engine) -> None:
    rng = random.Random(SEED)
    rpc = RpcClient(stack.env["AMQP_URI"], timeout=10, name="bench")
    try:
        one_rpc = timed(lambda: rpc.call("clients", "health"), REPEAT)
        show("one RPC (clients.health)", one_rpc)
        for name, wanted in searches(rng).items():
            figures = measure(stack, engine, rpc, wanted)
            versus(name, *figures, one_rpc=one_rpc)
            if name == "name search":
                tail(wanted, figures[0], figures[2])
    finally:
        rpc.close()


def tail(requests_of: list[dict[str, Any]], api: list[float], sql: list[float]) -> None:
    """Which name searches make the tail: each kind of fragment alone, and the slowest
    requests (sample k is request k + 5: five warm-up runs come first)."""
    kinds: dict[str, list[int]] = {}
    for k in range(len(api)):
        i = (k + 5) % len(requests_of)
        kind = ("short or common fragment" if i % 6 == 5 else
                "part of two words" if i % 3 == 0 else "whole name")
        kinds.setdefault(kind, []).append(k)
    for kind, ks in kinds.items():
        show(f"name search, {kind}: gateway API", [api[k] for k in ks])
        show(f"name search, {kind}: in-process", [sql[k] for k in ks])
    slowest = sorted(range(len(api)), key=lambda k: api[k], reverse=True)[:5]
    print("    slowest through the API: " + ", ".join(
        f"{requests_of[(k + 5) % len(requests_of)]['name']!r} {api[k]:.0f} ms "
        f"(in-process {sql[k]:.0f})" for k in slowest), flush=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load: the box is shared, so the tail follows it."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def versus(name: str, api: list[float], service: list[float], sql: list[float],
           totals: list[int], one_rpc: list[float]) -> None:
    show(f"{name}: gateway API", api)
    show(f"{name}: RPC to the service", service)
    show(f"{name}: the service's queries in-process", sql)
    print(f"{'':<4}{name}: load average {load_average()}", flush=True)
    print(f"{'':<4}{name}: matches per query median {statistics.median(totals[5:]):.0f}",
          flush=True)
    if name == "name search":  # goal: p99 <= 25 ms whatever fragment is typed
        compare(f"{name} API", api, sql, "SQL", goal_p99=25)
    else:  # goal: the database's time three times over, plus one RPC
        compare(f"{name} API", api, sql, "SQL", ratio=3, plus=statistics.median(one_rpc),
                plus_name="one RPC")


SEGMENTS = ("champions", "loyal", "promising", "at_risk", "hibernating", "lost")
SEGMENT_GOAL_MS = 300.0  # every report page, the segment-filtered list among them


def assign_segments(engine: Engine) -> None:
    """Put every client with a payment (five in six) in an RFM segment, as
    ``analytics.client_segments_changed`` would: the list filters on this column."""
    with engine.begin() as db:
        db.execute(text(f"""
            UPDATE clients SET rfm_computed_at = now(),
                   rfm_segment = CASE WHEN id % 6 = 0 THEN NULL
                                 ELSE ({sql_array(list(SEGMENTS))})[1 + (id / 6) % 6] END"""))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        db.execute(text("VACUUM ANALYZE clients"))


def segment_list(stack: Stack, engine: Engine) -> None:
    """The client list's HTML page filtered by an RFM segment, as a manager opens it,
    beside the SQL the service runs for it (page and count)."""
    assign_segments(engine)
    session = web_session(stack, "anna")
    chosen = iter(range(10**9))

    def page() -> None:
        segment = SEGMENTS[next(chosen) % len(SEGMENTS)]
        answer = session.get(f"{stack.url}/clients", params={"rfm": segment}, timeout=30)
        answer.raise_for_status()

    pages = timed(page, SEGMENT_REPEAT)

    def unfiltered() -> None:  # the same page without the filter: what the filter adds
        session.get(f"{stack.url}/clients", timeout=30).raise_for_status()

    show("client list, no filter: HTML page (reference)", timed(unfiltered, SEGMENT_REPEAT))
    sql = in_process(engine, [{"segment": segment} for segment in SEGMENTS], SEGMENT_REPEAT)
    show("client list filtered by RFM segment: HTML page", pages)
    show("client list filtered by RFM segment: its queries in-process", sql)
    compare(f"client list by RFM segment, {CLIENTS:,} clients", pages, sql, "SQL",
            goal_p99=SEGMENT_GOAL_MS)


def run(stack: Stack) -> None:
    engine = create_engine(stack_clients_url(stack))
    try:
        seconds = generate(engine)
        print(f"generated {CLIENTS:,} clients, {CLIENTS * CONTACTS_PER_CLIENT:,} contacts "
              f"and phones in {seconds:.1f} s", flush=True)
        report(stack, engine)
        segment_list(stack, engine)
    finally:
        engine.dispose()


def stack_clients_url(stack: Stack) -> str:
    base = stack.env.get("DB_BASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")
    return f"{base}/{stack.prefix}_clients"


def main() -> int:
    stack = Stack()
    try:
        stack.up()
        run(stack)
    finally:
        stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
