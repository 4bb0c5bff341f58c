"""Periodic maintenance run by beat: expired cache rows.

Safe when several beat instances run by mistake: cache deletion takes rows with ``FOR UPDATE SKIP LOCKED`` in
bounded batches. Broker housekeeping belongs to the broker package (``tasks/broker/housekeeping.py``).
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, text

from app.cache import postgres_cache

logger = logging.getLogger(__name__)

CACHE_DELETE_BATCH = 1000


def clean_cache(engine: Engine, batch_size: int = CACHE_DELETE_BATCH, max_batches: int = 1000) -> int:
    """Delete expired ``app_cache`` rows, ``batch_size`` per statement (each its own transaction)."""
    removed = postgres_cache(engine).purge_expired(batch_size, max_batches)
    logger.info("cache cleanup removed %d expired rows", removed)
    return removed


def record_run(engine: Engine, job: str, outcome: str | None = None) -> None:
    """Note that beat's job ``job`` just ran (``maintenance_runs``): beat's heartbeat, read by ``litscreen doctor``."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO maintenance_runs (job, last_run_at, runs, last_outcome) VALUES (:job, now(), 1, :outcome) "
            "ON CONFLICT (job) DO UPDATE SET last_run_at = now(), runs = maintenance_runs.runs + 1, "
            "last_outcome = EXCLUDED.last_outcome"), {"job": job, "outcome": (outcome or "")[:500]})


def last_runs(engine: Engine) -> dict[str, tuple[float, str | None]]:
    """Seconds since each maintenance job last ran, and its outcome: {job: (age_seconds, outcome)}."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT job, extract(epoch FROM now() - last_run_at), last_outcome FROM maintenance_runs")).all()
    return {row[0]: (float(row[1]), row[2]) for row in rows}
