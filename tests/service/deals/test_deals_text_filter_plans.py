"""The text filter (``q``, ``client``) gives the same deals whichever way the index is asked
(services/deals/text_plan.py): the plan the sample picks, the whole fragment on the
index as before, and the fragment's windows on the index with the whole fragment checked
on each deal — beside the plain ILIKE over every deal (the rule itself), for fragments
common and rare, of one and two letters, with "ё" and "е", digits, across the space
between the deal's and the client's name, and ones that match nothing."""
from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from services.deals import board, domain, text_plan
from services.deals.models import Status

TZ = ZoneInfo("Europe/Moscow")
DEALS = 3000
WORDS = ["Поставка", "Монтаж", "Ёлки", "Елки", "Сервис", "Аудит", "Подбор", "Ремонт"]
CLIENTS = ["ООО «Ромашка»", "АО «Север»", "ИП Фёдоров", "ИП Федоров", "ЗАО «Ёж и Ко»",
           "ООО «Альфа-100»", "ПАО «Запад_1»"]
FRAGMENTS = [
    "поставка", "ПОСТАВКА 1", "ромашка", "Ромашка 12", "а", "о", "ё", "е", "ёл", "ел",
    "Ёлки", "елки", "Фёдор", "федор", "12", "7", "123", "2999", "1000", "17 ООО", "ка 1",
    "ки 29", "Альфа-100", "Запад_1", "_", "%", "100%", "нет такой", "zzz", "Сервис 2999 АО",
    " ", "«Ёж", "Монтаж 1001", "Подбор 2221", "Елки 1234", "ЁЛКИ 123", "аудит 17",
]
SORTS = [None, "name", "-amount", "status", "-planned_close_on"]


@pytest.fixture(scope="module")
def database() -> object:
    """A deals database with DEALS deals over a few names, analysed (the sample)."""
    from tests.support import infra  # the service tier's fixtures are per test: one here

    infra.build_template("deals")
    url = infra.copy_database("deals")
    engine = create_engine(url)
    try:  # dropped even when the fill fails
        with engine.begin() as conn:
            conn.execute(text("""
                INSERT INTO deals (name, client_id, client_name, status_id, manager_id, amount,
                                   expected_amount, budget, paid, outstanding, currency,
                                   budget_revision, version, planned_close_on)
                SELECT (CAST(:words AS text[]))[1 + g % 8] || ' ' || g, 1 + g % 7,
                       (CAST(:clients AS text[]))[1 + g % 7],
                       (SELECT id FROM statuses ORDER BY position OFFSET g % 7 LIMIT 1),
                       1 + g % 3, (g * 37) % 1000, 0, 0, 0, 0, 'RUB', 0, 1,
                       CASE WHEN g % 4 > 0 THEN date '2027-01-01' + g % 90 END
                FROM generate_series(1, :n) AS g"""),
                {"words": WORDS, "clients": CLIENTS, "n": DEALS})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE deals"))
        yield engine
    finally:
        engine.dispose()
        infra.admin_execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def matching(db: Session, fragment: str, client: bool = False) -> list[tuple[int, int, Decimal]]:
    """(id, status_id, amount) of every deal the filter keeps: the ILIKE alone, newest first."""
    pattern = "%" + board._escape_like(fragment) + "%"
    column = "client_name" if client else "(name || ' ' || client_name)"
    return [tuple(r) for r in db.execute(text(
        f"SELECT id, status_id, amount FROM deals WHERE {column} ILIKE :p ORDER BY id DESC"),
        {"p": pattern})]


def answers(db: Session, filters: dict[str, str]) -> list[object]:
    """What every entry point answers for the filter."""
    statuses = list(db.query(Status).order_by(Status.position))
    f = domain.parse_filter(filters)
    found: list[object] = [board.board(db, f, statuses, TZ, 20),
                           board.column_page(db, f, statuses, TZ, statuses[1], None, 30),
                           board.find_page(db, f, None, statuses, TZ, 5)]
    for sort in SORTS:
        first = board.table_page(db, f, statuses, TZ, None, 40, domain.parse_sort(sort))
        found.append(first)
        if first["next_after"] is not None:  # the second page too (keyset condition)
            found.append(board.table_page(db, f, statuses, TZ, first["next_after"], 40,
                                          domain.parse_sort(sort)))
    return found


def forced(kind: str):
    def plan(db: Session, fragment: str) -> text_plan.TextPlan:
        if kind == "whole":
            return text_plan.TextPlan()
        return text_plan.TextPlan(tuple(text_plan.windows_of(fragment)[:text_plan.WINDOWS]))
    return plan


@pytest.mark.parametrize("field", ["q", "client"])
def test_every_plan_gives_the_deals_of_the_ilike(database, monkeypatch, field) -> None:
    seen_rare = 0
    with Session(database) as db:
        assert text_plan.sample(db) is not None, "ANALYZE left no sample to plan with"
        for fragment in FRAGMENTS:
            filters = {field: fragment}
            rows = matching(db, fragment, client=field == "client")
            natural = answers(db, filters)
            seen_rare += bool(text_plan.plan(db, fragment).windows)
            # the rule itself: counts, sums and the newest first of each column
            columns = natural[0]["columns"]  # type: ignore[index]
            for column in columns:
                mine = [r for r in rows if r[1] == column["status"]["id"]]
                assert column["count"] == len(mine), (fragment, column["status"]["code"])
                assert Decimal(column["amount"]) == sum((r[2] for r in mine), Decimal(0))
                assert [d["id"] for d in column["deals"]] == [r[0] for r in mine[:20]]
            assert [d["id"] for d in natural[2]["items"]] == [r[0] for r in rows[:5]]  # type: ignore[index]
            newest = natural[3]["items"]  # type: ignore[index]
            assert [d["id"] for d in newest] == [r[0] for r in rows[:40]], fragment
            # and the same answers, to the last card, whichever way the index is asked
            for kind in ("whole", "windows"):
                with monkeypatch.context() as m:
                    m.setattr(text_plan, "plan", forced(kind))
                    assert answers(db, filters) == natural, (fragment, kind)
    assert seen_rare >= 3, "no fragment took the rare windows' plan: the test proves little"
