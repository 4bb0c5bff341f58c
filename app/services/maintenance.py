"""Periodic maintenance run by beat: expired cache rows.

Safe when several beat instances run by mistake: cache deletion takes rows with ``FOR UPDATE SKIP LOCKED`` in
bounded batches. Broker housekeeping belongs to the broker package (``tasks/broker/housekeeping.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Engine, text

logger = logging.getLogger(__name__)

CACHE_DELETE_BATCH = 1000

_DELETE_EXPIRED_CACHE = """
DELETE FROM app_cache WHERE key IN (
    SELECT key FROM app_cache WHERE expires_at <= now() LIMIT :limit FOR UPDATE SKIP LOCKED
)
"""


def _expired_cache_deleter(engine: Engine) -> Callable[[int], int]:
    """The cache layer's own bounded delete when it has one, else the same statement here."""
    try:
        from app.cache.postgres import PostgresCache
    except ImportError:
        PostgresCache = None  # noqa: N806
    if PostgresCache is not None and hasattr(PostgresCache, "delete_expired"):
        return PostgresCache(engine).delete_expired

    def delete_batch(limit: int) -> int:
        with engine.begin() as conn:
            return conn.execute(text(_DELETE_EXPIRED_CACHE), {"limit": limit}).rowcount

    return delete_batch


def clean_cache(engine: Engine, batch_size: int = CACHE_DELETE_BATCH, max_batches: int = 1000) -> int:
    """Delete expired ``app_cache`` rows, ``batch_size`` per statement (each its own transaction)."""
    delete_batch = _expired_cache_deleter(engine)
    removed = 0
    for _ in range(max_batches):
        deleted = delete_batch(batch_size)
        removed += deleted
        if deleted < batch_size:
            break
    logger.info("cache cleanup removed %d expired rows", removed)
    return removed
