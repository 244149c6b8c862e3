"""A common fragment's page is read in list order with ``strpos`` on each name of the walk
(services/clients/search.py, ``name_contains(walk=True)``): the same clients in the same
order as with LIKE and the grams, for fragments of one, two and more characters, with
"ё" read as "е", digits, spaces, LIKE's own wildcards and ones that match nothing, in the
search box and the name filter, in every list order, on the first pages."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from bench.clients import generate
from services.clients import search
from services.clients.domain.listing import parse_list_query
from tests.support import infra

NOW = datetime(2026, 12, 4, tzinfo=UTC)
FRAGMENTS = ["а", "о", "ом", "ооо", "12", "7", "сев", "ромашка", "партнер", "партнёр",
             "ъ", "е", "ё", "ип ", " «", "«с", "100%", "_", "ао «", "нвест капи", "zz",
             "1", "99", "торг 1"]
SORTS = ["name", "-name", "number", "-city", "created_at", "-inn"]


@pytest.fixture(scope="module")
def database() -> Iterator[Engine]:
    infra.build_template("clients")
    url = infra.copy_database("clients")
    engine = create_engine(url)
    try:  # dropped even when the fill fails
        generate(engine, 3000)
        with engine.begin() as db:  # names with the search's own characters, a merged one
            db.execute(text("""
                UPDATE clients SET name = n, search_name = replace(lower(n), 'ё', 'е')
                FROM (VALUES (1, 'ООО «100% Партнёр»'), (2, 'ИП Под_чёркнутый'),
                             (3, 'АО «Ёлка 12»')) AS v(i, n) WHERE id = i"""))
            db.execute(text("UPDATE clients SET merged_into = 5 WHERE id = 4"))
        yield engine
    finally:
        engine.dispose()
        infra.admin_execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@pytest.mark.parametrize("field", ["query", "name"])
def test_the_walk_with_strpos_gives_the_page_of_like(database: Engine, field: str) -> None:
    found = 0
    with Session(database) as db:
        for fragment in FRAGMENTS:
            for sort in SORTS:
                for page in (1, 3):
                    q = (parse_list_query(fragment, {}, sort=sort, page=page) if field == "query"
                         else parse_list_query("", {"name": fragment}, sort=sort, page=page))
                    walked = [c.id for c in db.scalars(search.common_match_page(q, NOW))]
                    as_before = [c.id for c in db.scalars(
                        search.common_match_page(q, NOW, walk=False))]
                    assert walked == as_before, (fragment, sort, page)
                    found += len(walked)
    assert found > 1000, "the fragments matched too little to compare"
