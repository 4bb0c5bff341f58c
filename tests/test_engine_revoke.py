"""Operator commands never wedge a run: ``celery control terminate`` / ``revoke`` on screening batches, against
real worker and beat subprocesses. The sweeper re-sends a batch whose Celery id was revoked under a NEW id (every
worker would discard the old one again); the task then finalizes as when the chord's bookkeeping is lost."""

from __future__ import annotations

import pytest

from tests.support.engine import (
    add_records,
    configure_app,
    duplicate_results,
    engine_env,
    query,
    result_count,
    running_batch,
    scalar,
    sim,
    start_run,
    wait_final,
)
from tests.support.processes import ProcessGroup, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fast_teardown")]


def celery_id_of(database_url: str, task_id: int, batch_index: int) -> str:
    return scalar(database_url, "SELECT celery_task_id FROM screening_batches WHERE task_id = %s AND "
                                "batch_index = %s", task_id, batch_index)


def stored_state(database_url: str, celery_id: str) -> str | None:
    rows = query(database_url, "SELECT status FROM celery_taskmeta WHERE task_id = %s", celery_id)
    return rows[0][0] if rows else None


def test_terminate_of_a_running_batch_resumes_it_under_a_new_id(app, client, auth, project_id, database_url: str,
                                                                processes: ProcessGroup, monkeypatch,
                                                                beat) -> None:
    simulator = sim(processes, latency=0.15)
    env = engine_env(simulator, SIM_MAX_CONCURRENCY=2)
    configure_app(app, monkeypatch, simulator, SIM_MAX_CONCURRENCY=2)
    add_records(app, project_id, 30)
    processes.start_worker(database_url, "w1", concurrency=1, **env)
    beat(env)
    task = start_run(client, auth, project_id, batch_size=30)
    index, _pid = wait_for(lambda: running_batch(database_url, task["id"]), timeout=60,
                           message="the batch past its first checkpoint")
    original = celery_id_of(database_url, task["id"], index)

    # `celery control terminate SIGTERM <id>` through the app's control API
    app.extensions["celery"].control.terminate(original, signal="SIGTERM")

    assert wait_final(database_url, task["id"], timeout=120) == "completed"
    assert result_count(database_url, task["id"]) == 30
    assert duplicate_results(database_url, task["id"]) == 0
    assert stored_state(database_url, original) == "REVOKED"
    resent = celery_id_of(database_url, task["id"], index)
    assert resent != original  # a revoked id would be discarded by every worker
    assert stored_state(database_url, resent) == "SUCCESS"
    assert scalar(database_url, "SELECT attempts FROM screening_batches WHERE task_id = %s AND batch_index = %s",
                  task["id"], index) >= 2  # claimed again, from its checkpoint


def test_revoke_of_a_queued_batch_does_not_wedge_the_run(app, client, auth, project_id, database_url: str,
                                                         processes: ProcessGroup, monkeypatch, beat) -> None:
    simulator = sim(processes, latency=0.1)
    env = engine_env(simulator, SIM_MAX_CONCURRENCY=2)
    configure_app(app, monkeypatch, simulator, SIM_MAX_CONCURRENCY=2)
    add_records(app, project_id, 40)
    processes.start_worker(database_url, "w1", concurrency=1, **env)
    task = start_run(client, auth, project_id, batch_size=20)
    wait_for(lambda: running_batch(database_url, task["id"], min_cursor=0), timeout=60, message="batch 0 running")
    queued = celery_id_of(database_url, task["id"], 1)
    app.extensions["celery"].control.revoke(queued)  # batch 1 waits behind batch 0 on the one process
    wait_for(lambda: stored_state(database_url, queued) == "REVOKED", timeout=60,
             message="the worker discarding the revoked batch")
    assert scalar(database_url, "SELECT status FROM screening_batches WHERE task_id = %s AND batch_index = 1",
                  task["id"]) == "pending"

    beat(env)
    assert wait_final(database_url, task["id"], timeout=120) == "completed"
    assert result_count(database_url, task["id"]) == 40
    assert duplicate_results(database_url, task["id"]) == 0
    assert celery_id_of(database_url, task["id"], 1) != queued
