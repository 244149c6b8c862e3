"""Database access: engine set-up and sessions outside entrypoints.

psycopg 3's C wait function blocks the eventlet hub, so every service process must import
psycopg with ``PSYCOPG_WAIT_FUNC=wait_select`` (set by ``services.kit.runner`` and the test
conftest before psycopg is imported); ``cooperative_psycopg`` asserts it.
"""
from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, Table, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def cooperative_psycopg() -> None:
    os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")


# A pooled connection idle longer than this gets a real round trip before it is handed
# out; a busier one only a look at its socket (``_check_on_checkout``).
PING_AFTER_IDLE_SECONDS = 30.0


def make_engine(url: str, pool_size: int = 10, **kwargs: Any) -> Engine:
    cooperative_psycopg()
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                           pool_recycle=1800, **kwargs)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _check_on_checkout)
    return engine


def _note_checkin(dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _check_on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Hand out only a live connection, without a round trip when it was in use a moment
    ago.  ``pool_pre_ping`` sent ``SELECT 1`` on every checkout: one more round trip for
    every call and request.  A server that ends a connection (a restart, a terminated
    backend) writes a FATAL message and closes the socket, so an idle connection whose
    socket has anything to read is dead or in a state we did not leave it in: the pool
    drops it and checks out another (``DisconnectionError``).  One idle for a long time
    (a silent network may have lost it) is pinged for real."""
    if dbapi_connection.closed or readable(dbapi_connection.fileno()):
        raise exc.DisconnectionError("the server closed this connection while it was idle")
    idle_since = record.info.get("idle_since")
    if idle_since is not None and time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
        try:
            dbapi_connection.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as error:  # any failure of the ping: take a fresh connection
            raise exc.DisconnectionError(str(error)) from error


def readable(fd: int) -> bool:
    """Whether a socket has anything to read right now (never waits): on an idle
    connection, that is the peer's goodbye."""
    poll = _plain_select().poll()
    poll.register(fd, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    return bool(poll.poll(0))


@cache
def _plain_select() -> Any:
    """The unpatched ``select`` even under eventlet: a zero timeout never waits, so there
    is nothing for the hub to do, and a green poll would cost a switch to it."""
    if "eventlet" in sys.modules:
        from eventlet.patcher import original

        return original("select")
    return select


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error (outside entrypoints)."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def table_of(model: type[Any]) -> Table:
    """A model's table, typed as one (SQLAlchemy types ``__table__`` as any FromClause,
    which ``insert`` does not take)."""
    return cast(Table, model.__table__)


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE/DELETE touched (SQLAlchemy types ``execute`` as a plain Result)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


def driver_connection(session: Session) -> Any:
    """The psycopg connection under a session's transaction (for COPY)."""
    return session.connection().connection.driver_connection
