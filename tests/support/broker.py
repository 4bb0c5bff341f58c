"""Helpers of the broker tests: short broker clocks, ready workers, and what the diagnostic probes recorded."""

from __future__ import annotations

from pathlib import Path

import psycopg

from app.processes import ChildProcess
from tests.support.database import conninfo
from tests.support.processes import ProcessGroup, wait_for

# Short clocks for tests: visibility timeout, housekeeping (reclaim, queue expiry) and the safety poll.
BROKER_ENV = {
    "BROKER_VISIBILITY_TIMEOUT": "3",
    "BROKER_HOUSEKEEPING_INTERVAL": "1",
    "BROKER_POLLING_INTERVAL": "1",
    "CELERY_EVENT_QUEUE_EXPIRES": "3",
}


def query(database_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of one statement on the test database (its own connection, autocommit)."""
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def executions(database_url: str, phase: str, tag_prefix: str) -> list[dict]:
    """What ``record_execution`` recorded for tags starting with ``tag_prefix`` (phase: start | finish)."""
    rows = query(database_url, "SELECT value FROM app_cache WHERE key LIKE %s ORDER BY created_at",
                 (f"diag:{phase}:{tag_prefix}%",))
    return [row[0] for row in rows]


def wait_ready(process: ChildProcess, timeout: float = 60) -> None:
    """Wait until a worker subprocess logged that it is ready."""
    log: Path = process.log_path
    wait_for(lambda: process.poll() is None and "ready." in log.read_text(errors="replace"), timeout,
             message=f"{log.name} ready")


def start_workers(processes: ProcessGroup, database_url: str, names: list[str], concurrency: int = 1,
                  **env: str) -> list[ChildProcess]:
    """Start real workers with the short broker clocks and wait until each is ready."""
    workers = [processes.start_worker(database_url, name, concurrency=concurrency, **{**BROKER_ENV, **env})
               for name in names]
    for worker in workers:
        wait_ready(worker)
    return workers


def messages_left(database_url: str) -> int:
    """Messages still in the default queue."""
    return query(database_url, "SELECT count(*) FROM kombu_message m JOIN kombu_queue q ON q.id = m.queue_id "
                               "WHERE q.name = 'celery'")[0][0]
