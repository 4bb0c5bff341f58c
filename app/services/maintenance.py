"""Periodic maintenance run by beat: expired cache rows.

Safe when several beat instances run by mistake: cache deletion takes rows with ``FOR UPDATE SKIP LOCKED`` in
bounded batches. Broker housekeeping belongs to the broker package (``tasks/broker/housekeeping.py``).
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from app.cache import postgres_cache

logger = logging.getLogger(__name__)

CACHE_DELETE_BATCH = 1000

def clean_cache(engine: Engine, batch_size: int = CACHE_DELETE_BATCH, max_batches: int = 1000) -> int:
    """Delete expired ``app_cache`` rows, ``batch_size`` per statement (each its own transaction)."""
    removed = postgres_cache(engine).purge_expired(batch_size, max_batches)
    logger.info("cache cleanup removed %d expired rows", removed)
    return removed
