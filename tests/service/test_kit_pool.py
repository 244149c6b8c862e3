"""The kit's connection pool on a real PostgreSQL: a connection the server ended while it
sat in the pool is never handed out, and a busy one costs no extra round trip."""
from __future__ import annotations

import time

from sqlalchemy import text

from services.kit import db
from tests.support import infra


def _ended(engine, pid: int) -> None:
    """End a backend as a restart of PostgreSQL does, and wait until it is gone."""
    infra.admin_execute(f"SELECT pg_terminate_backend({int(pid)})")
    deadline = time.monotonic() + 5
    with engine.connect() as probe:
        while probe.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                            {"p": pid}).scalar_one():
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.05)


def test_a_connection_ended_by_the_server_while_pooled_is_replaced_unseen(db_url):
    engine = db.make_engine(db_url("notifications"), pool_size=1)
    watcher = db.make_engine(db_url("notifications"), pool_size=1)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        _ended(watcher, first)
        with engine.connect() as conn:  # no error: the pool saw the closed socket
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert second != first
    finally:
        engine.dispose()
        watcher.dispose()


def test_a_connection_used_a_moment_ago_is_handed_out_without_a_round_trip(db_url):
    engine = db.make_engine(db_url("notifications"), pool_size=1)
    watcher = db.make_engine(db_url("notifications"), pool_size=1)

    def last_statement(pid: int) -> tuple[str, object]:
        return _last_statement(watcher, pid)

    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        before = last_statement(pid)
        for _ in range(3):
            with engine.connect() as conn:  # checked out: the server heard nothing
                assert last_statement(pid) == before
                conn.rollback()
    finally:
        engine.dispose()
        watcher.dispose()


def test_a_connection_idle_for_long_is_pinged_before_it_is_handed_out(db_url, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    engine = db.make_engine(db_url("notifications"), pool_size=1)
    watcher = db.make_engine(db_url("notifications"), pool_size=1)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        before = _last_statement(watcher, pid)
        time.sleep(0.01)
        with engine.connect() as conn:
            assert _last_statement(watcher, pid) != before  # the ping was heard
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid
    finally:
        engine.dispose()
        watcher.dispose()


def _last_statement(watcher, pid: int) -> tuple[str, object]:
    """What the backend ran last, and when it started it."""
    with watcher.connect() as probe:
        row = probe.execute(text("SELECT query, query_start FROM pg_stat_activity "
                                 "WHERE pid = :p"), {"p": pid}).one()
    return str(row[0]), row[1]
