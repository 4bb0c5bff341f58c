"""Broker housekeeping, the one implementation: reclaim overdue deliveries, drop expired queues and messages.

Run by every consuming process's keeper thread (``keeper.py``) and by beat's ``clean_broker`` task
(``tasks/maintenance.py``). It runs under a transaction-level advisory lock, so concurrent runners skip instead of
doing the work twice.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from tasks.broker import sql

logger = logging.getLogger(__name__)

HOUSEKEEPING_LOCK = sql.HOUSEKEEPING_LOCK


def run(conn: psycopg.Connection) -> dict[str, int] | None:
    """Housekeeping in one transaction on ``conn``; the counts, or None when another runner holds the lock."""
    with conn.transaction():
        locked = conn.execute(sql.TRY_HOUSEKEEPING_LOCK, {"key": HOUSEKEEPING_LOCK}).fetchone()
        if not locked or not locked[0]:
            return None
        counts = {}
        for name, statement in sql.HOUSEKEEPING:
            row = conn.execute(statement).fetchone()
            counts[name] = int(row[0]) if row else 0
    if any(counts.values()):
        logger.info("broker housekeeping: %s", summary(counts))
    return counts


def run_with_engine(engine: Any) -> dict[str, int] | None:
    """``run`` on a connection of a SQLAlchemy engine with the psycopg driver (beat's task uses the app's)."""
    with engine.begin() as connection:
        return run(connection.connection.driver_connection)


def summary(counts: dict[str, Any] | None) -> str:
    """A one-line description of a housekeeping result for logs and task results."""
    if counts is None:
        return "skipped (another runner holds the lock)"
    return ", ".join(f"{name}={value}" for name, value in counts.items())
