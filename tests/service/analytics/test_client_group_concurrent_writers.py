"""A deal written while its client joins a group takes the group, whichever of the two
transactions commits first (migration a8c3e5f7b9d2).

Each test holds one transaction open on a connection of its own and runs the other in a
second green thread: before the fix the second one did not wait, each transaction missed
the other's uncommitted row, and the deal stayed out of the group."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine

CLIENT, GROUP = 501, 60
OTHER_CLIENT = 502

INSERT_DEAL = text(
    "INSERT INTO deals (deal_id, version, rebuilt_version, name, client_id, client_name,"
    " status, amount, currency) VALUES (:deal_id, 1, 0, 'Сделка', :client_id, '', 'new',"
    " 0, 'RUB')")
MOVE_DEAL = text("UPDATE deals SET client_id = :client_id WHERE deal_id = :deal_id")
JOIN_GROUP = text(
    "INSERT INTO client_group_members (client_id, client_group_id, version, kind_version)"
    " VALUES (:client_id, :group, 1, 0)")


@pytest.fixture
def engine(db_url: Callable[[str], str]) -> Iterator[Engine]:
    made = create_engine(db_url("analytics"), pool_size=4)
    yield made
    made.dispose()


def _in_thread(engine: Engine, work: Callable[[Connection], Any]) -> threading.Thread:
    """``work`` in its own transaction, committed, in a thread of its own."""
    def run() -> None:
        with engine.begin() as conn:
            work(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _group_of(engine: Engine, deal_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(text("SELECT client_group_id FROM deals WHERE deal_id = :d"),
                            {"d": deal_id}).scalar_one()


def _write_deal(conn: Connection, how: str) -> None:
    if how == "insert":
        conn.execute(INSERT_DEAL, {"deal_id": 1, "client_id": CLIENT})
    else:  # the deal moves to the client (``client_id`` changes: the row trigger)
        conn.execute(MOVE_DEAL, {"deal_id": 1, "client_id": CLIENT})


def _prepare(engine: Engine, how: str) -> None:
    if how == "move":
        with engine.begin() as conn:
            conn.execute(INSERT_DEAL, {"deal_id": 1, "client_id": OTHER_CLIENT})


def _join(conn: Connection) -> None:
    conn.execute(JOIN_GROUP, {"client_id": CLIENT, "group": GROUP})


@pytest.mark.parametrize("first", ["deal", "group"])
@pytest.mark.parametrize("how", ["insert", "move"])
def test_a_deal_written_while_its_client_joins_a_group_is_in_the_group(
        engine: Engine, how: str, first: str) -> None:
    """``first``: whose transaction is open while the other runs (and must wait)."""
    _prepare(engine, how)
    write: Callable[[Connection], None] = lambda conn: _write_deal(conn, how)  # noqa: E731
    opened, other = (write, _join) if first == "deal" else (_join, write)
    with engine.connect() as conn:
        conn.begin()
        opened(conn)
        second = _in_thread(engine, other)
        second.join(0.5)  # before the fix it was done by now, having missed the open one
        conn.commit()
    second.join(10)
    assert not second.is_alive()
    assert _group_of(engine, 1) == GROUP


def test_writers_of_deals_do_not_wait_for_each_other_nor_for_a_kind_update(
        engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(JOIN_GROUP, {"client_id": CLIENT, "group": GROUP})
    with engine.connect() as first:
        first.begin()
        first.execute(INSERT_DEAL, {"deal_id": 1, "client_id": CLIENT})
        # another deal of the same client, and the client's kind changing, go through
        # while the first deal's transaction is still open
        second = _in_thread(engine, lambda c: c.execute(
            INSERT_DEAL, {"deal_id": 2, "client_id": CLIENT}))
        kind = _in_thread(engine, lambda c: c.execute(text(
            "UPDATE client_group_members SET kind = 'company', kind_version = 2"
            " WHERE client_id = :c"), {"c": CLIENT}))
        second.join(10)
        kind.join(10)
        assert not second.is_alive() and not kind.is_alive()
        first.commit()
    assert (_group_of(engine, 1), _group_of(engine, 2)) == (GROUP, GROUP)
