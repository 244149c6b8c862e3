"""A cluster-wide lease on one job (a PBX connection, a bot poller) for one process.

Several replicas of a service may run; some work must be done by exactly one of them (two
``getUpdates`` pollers make Telegram answer 409; two AMI sessions double every event).
``AdvisoryLease`` holds a PostgreSQL session-level advisory lock on a dedicated
connection: the holder keeps it while its connection lives; when the process dies, the
server drops the connection and the lock, and another replica's ``try_acquire`` wins.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from services.kit.db import cooperative_psycopg

log = logging.getLogger("crm.lease")


class AdvisoryLease:
    def __init__(self, db_url: str, name: str) -> None:
        cooperative_psycopg()
        self.name = name
        self._engine = create_engine(db_url, poolclass=NullPool,
                                     isolation_level="AUTOCOMMIT")
        self._conn: Any = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_acquire(self) -> bool:
        """True when this process now holds the lease (or already did)."""
        if self._conn is not None:
            return self.alive()
        conn = self._engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:n))"),
                               {"n": self.name}).scalar()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        log.info("lease %s acquired", self.name)
        return True

    def alive(self) -> bool:
        """Whether the lease is still ours (its connection still answers)."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.warning("lease %s lost with its connection", self.name)
            self._drop()
            return False

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(hashtext(:n))"),
                               {"n": self.name})
        except Exception:
            pass  # closing the connection below releases it all the same
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass  # the connection is already broken

    def dispose(self) -> None:
        self.release()
        self._engine.dispose()
