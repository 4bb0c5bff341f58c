"""Maintenance: expired cache rows go in bounded batches, broker housekeeping removes exactly what is dead, and a
real beat process runs the cleanup jobs (expired cache rows only, expired Celery results only)."""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg

from app.services import maintenance
from tasks.broker import housekeeping
from tests.support.broker import BROKER_ENV, query, start_workers
from tests.support.database import conninfo
from tests.support.processes import ProcessGroup, subprocess_env, wait_for


def execute(database_url: str, sql: str, params: tuple = ()) -> None:
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        conn.execute(sql, params)


def add_cache_rows(database_url: str) -> None:
    """2,345 expired rows, 7 rows valid for an hour, 3 without expiry."""
    execute(database_url, "INSERT INTO app_cache (key, value, expires_at, created_at) "
                          "SELECT 'asl:llm:old' || g, '1', now() - interval '1 minute', now() "
                          "FROM generate_series(1, 2345) g")
    execute(database_url, "INSERT INTO app_cache (key, value, expires_at, created_at) "
                          "SELECT 'asl:llm:new' || g, '1', now() + interval '1 hour', now() "
                          "FROM generate_series(1, 7) g")
    execute(database_url, "INSERT INTO app_cache (key, value, expires_at, created_at) "
                          "SELECT 'dc:health:' || g, '1', NULL, now() FROM generate_series(1, 3) g")


def remaining_cache_keys(database_url: str) -> list[str]:
    return [row[0] for row in query(database_url, "SELECT key FROM app_cache ORDER BY key")]


def test_clean_cache_deletes_only_expired_rows(app, database_url: str) -> None:
    add_cache_rows(database_url)
    with app.app_context():
        from app.extensions import db

        assert maintenance.clean_cache(db.engine) == 2345
        assert maintenance.clean_cache(db.engine) == 0
    keys = remaining_cache_keys(database_url)
    assert len(keys) == 10 and not any(key.startswith("asl:llm:old") for key in keys)


def test_clean_broker_removes_dead_queues_and_reclaims_overdue_messages(app, database_url: str) -> None:
    execute(database_url, """
        INSERT INTO kombu_queue (name, expires_ms, last_used_at) VALUES
            ('dead.reply', 1000, now() - interval '1 minute'),
            ('live.reply', 60000, now()),
            ('celery', NULL, now() - interval '1 day');
        INSERT INTO kombu_binding (exchange, exchange_type, routing_key, pattern, queue) VALUES
            ('reply.celery.pidbox', 'direct', 'dead', '', 'dead.reply'),
            ('reply.celery.pidbox', 'direct', 'live', '', 'live.reply'),
            ('celery', 'direct', 'celery', '', 'celery'),
            ('gone', 'direct', 'x', '', 'no-such-queue');
        INSERT INTO kombu_message (visible, timestamp, payload, version, queue_id, deadline, deliveries, expires_at)
        SELECT v.visible, now(), '{}', 1, q.id, v.deadline, v.deliveries, v.expires_at
        FROM (VALUES ('dead.reply', true, NULL::timestamptz, 0, NULL::timestamptz),
                     ('celery', false, now() - interval '1 second', 1, NULL),       -- overdue: reclaim
                     ('celery', false, now() + interval '1 minute', 1, NULL),       -- held by a live worker
                     ('celery', false, NULL, 0, NULL),                              -- stock kombu leftover
                     ('live.reply', true, NULL, 0, now() - interval '1 second'),    -- past its TTL
                     ('live.reply', true, NULL, 0, now() + interval '1 minute'))
             AS v(queue, visible, deadline, deliveries, expires_at)
        JOIN kombu_queue q ON q.name = v.queue
    """)
    with app.app_context():
        from app.extensions import db

        counts = housekeeping.run_with_engine(db.engine)
    assert counts == {"reclaimed_messages": 1, "expired_queues": 1, "orphan_bindings": 1, "expired_messages": 1,
                      "acked_leftovers": 1}
    assert [row[0] for row in query(database_url, "SELECT name FROM kombu_queue ORDER BY name")] == [
        "celery", "live.reply"]
    assert [row[0] for row in query(database_url, "SELECT queue FROM kombu_binding ORDER BY queue")] == [
        "celery", "live.reply"]
    assert query(database_url, "SELECT q.name, m.visible, m.deliveries FROM kombu_message m "
                               "JOIN kombu_queue q ON q.id = m.queue_id ORDER BY q.name, m.visible") == [
        ("celery", False, 1), ("celery", True, 1), ("live.reply", True, 0)]


def test_clean_broker_skips_while_another_runner_holds_the_lock(app, database_url: str) -> None:
    with psycopg.connect(conninfo(database_url)) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (housekeeping.HOUSEKEEPING_LOCK,))
        with app.app_context():
            from app.extensions import db

            assert housekeeping.run_with_engine(db.engine) is None


def test_beat_runs_cache_and_result_cleanup(database_url: str, processes: ProcessGroup, tmp_path: Path) -> None:
    add_cache_rows(database_url)
    execute(database_url, """
        INSERT INTO celery_taskmeta (task_id, status, date_done) VALUES
            ('old-1', 'SUCCESS', timezone('utc', now()) - interval '2 hours'),
            ('old-2', 'FAILURE', timezone('utc', now()) - interval '3 hours'),
            ('fresh-1', 'SUCCESS', timezone('utc', now()) - interval '10 minutes')
    """)
    env = {**BROKER_ENV, "CACHE_CLEANUP_INTERVAL_SECONDS": "1", "BROKER_CLEANUP_INTERVAL_SECONDS": "1",
           "RESULT_CLEANUP_INTERVAL_SECONDS": "1", "RESULT_EXPIRES_SECONDS": "3600"}
    start_workers(processes, database_url, ["janitor"], **env)
    processes.start([sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "INFO",
                     "--schedule", str(tmp_path / "beat-schedule")], subprocess_env(database_url, **env), "beat")

    wait_for(lambda: len(remaining_cache_keys(database_url)) == 10, 60, message="expired cache rows removed")
    wait_for(lambda: not query(database_url, "SELECT 1 FROM celery_taskmeta WHERE task_id LIKE 'old-%%'"), 60,
             message="expired results removed")
    assert not any(key.startswith("asl:llm:old") for key in remaining_cache_keys(database_url))
    assert query(database_url, "SELECT task_id FROM celery_taskmeta WHERE task_id LIKE 'fresh-%%'") == [("fresh-1",)]
    log = (tmp_path / "janitor.log").read_text(errors="replace")
    assert "cache cleanup removed 2345 expired rows" in log
