"""Database access: engine set-up and sessions outside entrypoints.

psycopg 3's C wait function blocks the eventlet hub, so every service process must import
psycopg with ``PSYCOPG_WAIT_FUNC=wait_select`` (set by ``services.kit.runner`` and the test
conftest before psycopg is imported); ``cooperative_psycopg`` asserts it.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, Table, create_engine
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


def make_engine(url: str, pool_size: int = 10, **kwargs: Any) -> Engine:
    cooperative_psycopg()
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                         pool_recycle=1800, **kwargs)


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
