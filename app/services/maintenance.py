"""Periodic maintenance run by beat: expired cache rows, and the record of each job's last run (beat's heartbeat).

Safe when several beat instances run by mistake: cache deletion takes rows with ``FOR UPDATE SKIP LOCKED`` in
bounded batches. Broker housekeeping belongs to the broker package (``tasks/broker/housekeeping.py``).
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from app.cache import postgres_cache

logger = logging.getLogger(__name__)

CACHE_DELETE_BATCH = 1000


def clean_cache(engine: Engine, batch_size: int = CACHE_DELETE_BATCH, max_batches: int = 1000) -> int:
    """Delete expired ``app_cache`` rows, ``batch_size`` per statement (each its own transaction)."""
    removed = postgres_cache(engine).purge_expired(batch_size, max_batches)
    logger.info("cache cleanup removed %d expired rows", removed)
    return removed


def record_run(engine: Engine, job: str, outcome: str | None = None) -> None:
    """Note that beat's job ``job`` just ran (``maintenance_runs``): beat's heartbeat, read by ``litscreen doctor``.

    Best effort: a database that is away right now costs one heartbeat (the next run writes it), not the job."""
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO maintenance_runs (job, last_run_at, runs, last_outcome) VALUES (:job, now(), 1, :outcome) "
                "ON CONFLICT (job) DO UPDATE SET last_run_at = now(), runs = maintenance_runs.runs + 1, "
                "last_outcome = EXCLUDED.last_outcome"), {"job": job, "outcome": (outcome or "")[:500]})
    except DBAPIError as exc:
        logger.warning("could not record the run of %s: %s", job, type(exc.orig).__name__)
