"""Maintenance tasks travel on their own queue, so a dedicated worker runs them while screening workers are busy."""

from __future__ import annotations

import psycopg

from app import task_names
from tests.support import database
from tests.support.processes import ProcessGroup, wait_for


def test_maintenance_tasks_are_routed_to_the_maintenance_queue(app) -> None:
    router = app.extensions["celery"].amqp.router
    for name in (task_names.SWEEP, task_names.CLEAN_CACHE, task_names.CLEAN_BROKER, "celery.backend_cleanup"):
        assert router.route({}, name)["queue"].name == "maintenance", name
    assert router.route({}, task_names.SCREEN_BATCH)["queue"].name == "celery"
    assert router.route({}, task_names.FINALIZE_TASK)["queue"].name == "celery"


def test_a_maintenance_only_worker_runs_beats_jobs(app, database_url: str, processes: ProcessGroup) -> None:
    with psycopg.connect(database.conninfo(database_url), autocommit=True) as conn:
        conn.execute("INSERT INTO app_cache (key, value, expires_at, created_at) "
                     "VALUES ('asl:llm:old', '1', now() - interval '1 hour', now()), "
                     "('asl:llm:fresh', '1', now() + interval '1 hour', now())")
    processes.start_worker(database_url, "maintenance-only", queues="maintenance")
    with app.app_context():
        app.extensions["celery"].send_task(task_names.CLEAN_CACHE)

    def remaining() -> list[str] | None:
        with psycopg.connect(database.conninfo(database_url)) as conn:
            keys = [row[0] for row in conn.execute("SELECT key FROM app_cache ORDER BY key")]
        return keys if keys == ["asl:llm:fresh"] else None

    assert wait_for(remaining, timeout=60, message="the expired cache row to be cleaned") == ["asl:llm:fresh"]
