"""Periodic maintenance run by beat: expired cache rows and broker housekeeping.

Every job is safe when several beat instances run by mistake: cache deletion takes rows with
``FOR UPDATE SKIP LOCKED`` in bounded batches, and broker housekeeping runs under a transaction-level advisory
lock (a second runner skips). The broker statements are shared with the transport (``tasks/transport.py``),
which runs the same housekeeping from every consuming process.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, text

from app.cache import postgres_cache

logger = logging.getLogger(__name__)

CACHE_DELETE_BATCH = 1000
BROKER_HOUSEKEEPING_LOCK = 0x6B6F6D6275  # advisory lock key ("kombu")

# Each statement returns one count. Messages go with their queue (ON DELETE CASCADE).
_RECLAIM_OVERDUE = """
WITH reclaimed AS (
    UPDATE kombu_message SET visible = true, deadline = NULL
    WHERE NOT visible AND deadline < now()
    RETURNING queue_id
), notified AS (
    SELECT pg_notify('kombu', q.name)
    FROM (SELECT DISTINCT queue_id FROM reclaimed) r JOIN kombu_queue q ON q.id = r.queue_id
)
SELECT (SELECT count(*) FROM reclaimed) + 0 * (SELECT count(*) FROM notified)
"""

_EXPIRED_QUEUES = """
WITH dead AS (
    SELECT id, name FROM kombu_queue
    WHERE expires_ms IS NOT NULL AND last_used_at < now() - expires_ms * interval '1 millisecond'
    FOR UPDATE SKIP LOCKED
), unbound AS (
    DELETE FROM kombu_binding WHERE queue IN (SELECT name FROM dead) RETURNING 1
), deleted AS (
    DELETE FROM kombu_queue WHERE id IN (SELECT id FROM dead) RETURNING 1
)
SELECT count(*) FROM deleted
"""

_ORPHAN_BINDINGS = """
WITH deleted AS (
    DELETE FROM kombu_binding b WHERE NOT EXISTS (SELECT 1 FROM kombu_queue q WHERE q.name = b.queue)
    RETURNING 1
)
SELECT count(*) FROM deleted
"""

_EXPIRED_MESSAGES = """
WITH deleted AS (DELETE FROM kombu_message WHERE expires_at < now() RETURNING 1)
SELECT count(*) FROM deleted
"""

# Rows left by kombu's stock transport (it marks delivered rows invisible and never deletes them); our
# transport always sets a deadline on an invisible row.
_ACKED_LEFTOVERS = """
WITH deleted AS (DELETE FROM kombu_message WHERE NOT visible AND deadline IS NULL RETURNING 1)
SELECT count(*) FROM deleted
"""


def broker_housekeeping_sql() -> list[tuple[str, str]]:
    """``(name, statement)`` pairs of broker housekeeping; each statement returns one count."""
    return [
        ("reclaimed_messages", _RECLAIM_OVERDUE),
        ("expired_queues", _EXPIRED_QUEUES),
        ("orphan_bindings", _ORPHAN_BINDINGS),
        ("expired_messages", _EXPIRED_MESSAGES),
        ("acked_leftovers", _ACKED_LEFTOVERS),
    ]


def clean_broker(engine: Engine) -> dict[str, int] | None:
    """Broker housekeeping in one transaction; None when another process holds the lock right now."""
    with engine.begin() as conn:
        lock = conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": BROKER_HOUSEKEEPING_LOCK})
        if not lock.scalar():
            logger.info("broker housekeeping skipped: another process is running it")
            return None
        counts = {name: int(conn.execute(text(sql)).scalar_one()) for name, sql in broker_housekeeping_sql()}
    logger.info("broker housekeeping removed/reclaimed: %s", counts)
    return counts


def clean_cache(engine: Engine, batch_size: int = CACHE_DELETE_BATCH, max_batches: int = 1000) -> int:
    """Delete expired ``app_cache`` rows, ``batch_size`` per statement (each its own transaction)."""
    removed = postgres_cache(engine).purge_expired(batch_size, max_batches)
    logger.info("cache cleanup removed %d expired rows", removed)
    return removed


def summary(counts: dict[str, Any] | None) -> str:
    """A one-line description of a housekeeping result for logs and task results."""
    if counts is None:
        return "skipped (another runner holds the lock)"
    return ", ".join(f"{name}={value}" for name, value in counts.items())
