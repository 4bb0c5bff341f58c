"""Crash and concurrency: real ``celery worker`` / ``celery beat`` subprocesses, the simulator with latency, real
PostgreSQL. Every assertion reads the database (or the simulator's call counter), never log lines.

Clocks are shortened through the environment (lease TTL 3 s, sweep every 1 s, retry backoff 1 s); timeouts are
generous and nothing asserts a duration.
"""

from __future__ import annotations

import signal
import time

import psutil
import pytest

from app import task_names
from app.processes import free_port
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
    sim_placeholder,
    simulator_calls,
    start_run,
    task_status,
    wait_final,
)
from tests.support.processes import ProcessGroup, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fast_teardown")]

CHECKPOINT_EVERY = 10


def worker_owning(workers: list, pid: int):
    """The worker subprocess whose process tree contains ``pid``."""
    for worker in workers:
        tree = {worker.pid} | {c.pid for c in psutil.Process(worker.pid).children(recursive=True)}
        if pid in tree:
            return worker
    raise AssertionError(f"no worker owns pid {pid}")


def test_kill9_of_a_worker_mid_batch_loses_nothing(app, client, auth, project_id, database_url: str,
                                                   processes: ProcessGroup, monkeypatch, beat) -> None:
    simulator = sim(processes, latency=0.15)
    env = engine_env(simulator, SIM_MAX_CONCURRENCY=2)
    configure_app(app, monkeypatch, simulator, SIM_MAX_CONCURRENCY=2)
    add_records(app, project_id, 40)
    workers = [processes.start_worker(database_url, "wa", concurrency=1, **env),
               processes.start_worker(database_url, "wb", concurrency=2, **env)]
    beat(env)
    task = start_run(client, auth, project_id, batch_size=20)

    index, pid = wait_for(lambda: running_batch(database_url, task["id"]), timeout=60,
                          message="a batch past its first checkpoint")
    victim = worker_owning(workers, pid)
    ProcessGroup.kill_tree(victim)  # kill -9 of the worker and its pool children
    victim.wait(timeout=10)

    assert wait_final(database_url, task["id"], timeout=120) == "completed"
    assert result_count(database_url, task["id"]) == 40
    assert duplicate_results(database_url, task["id"]) == 0
    redone_records = (simulator_calls(simulator) - 2 * 40) / 2
    assert 0 <= redone_records <= CHECKPOINT_EVERY
    assert scalar(database_url, "SELECT attempts FROM screening_batches WHERE task_id = %s AND batch_index = %s",
                  task["id"], index) >= 2  # the killed batch was claimed again


def test_kill9_of_the_worker_holding_the_chord_unlock(app, client, auth, project_id, database_url: str,
                                                      processes: ProcessGroup, monkeypatch, beat) -> None:
    simulator = sim(processes, latency=0.5)
    env = engine_env(simulator)
    # The chord polls every 30 s: its first check (1 s after the start) finds batches still running (each takes
    # ~1.5 s), so when every batch is done the chord_unlock message sits in the worker's memory (an ETA message)
    # and killing the worker loses it for sure.
    configure_app(app, monkeypatch, simulator, CHORD_UNLOCK_INTERVAL_SECONDS=30)
    add_records(app, project_id, 30)
    first = processes.start_worker(database_url, "w1", concurrency=2, **env)
    task = start_run(client, auth, project_id, batch_size=10)
    wait_for(lambda: scalar(database_url, "SELECT count(*) FROM screening_batches WHERE task_id = %s AND "
                                          "status = 'done'", task["id"]) == 3, timeout=60, interval=0.05,
             message="every batch done")
    ProcessGroup.kill_tree(first)
    first.wait(timeout=10)
    assert task_status(database_url, task["id"]) == "running"  # the chord's finalize never ran

    processes.start_worker(database_url, "w2", concurrency=1, **env)
    beat(env)
    assert wait_final(database_url, task["id"], timeout=60) == "completed"
    assert result_count(database_url, task["id"]) == 30
    chord_id = scalar(database_url, "SELECT chord_id FROM screening_tasks WHERE id = %s", task["id"])
    assert scalar(database_url, "SELECT count(*) FROM celery_taskmeta WHERE task_id = %s AND status = 'SUCCESS'",
                  chord_id) == 0  # finalized by the sweeper, not by the lost chord


def test_killing_a_pool_child_reruns_the_batch_without_duplicates(app, client, auth, project_id,
                                                                   database_url: str, processes: ProcessGroup,
                                                                   monkeypatch, beat) -> None:
    simulator = sim(processes, latency=0.15)
    env = engine_env(simulator, SIM_MAX_CONCURRENCY=2)
    configure_app(app, monkeypatch, simulator, SIM_MAX_CONCURRENCY=2)
    add_records(app, project_id, 30)
    worker = processes.start_worker(database_url, "w1", concurrency=1, **env)
    beat(env)
    task = start_run(client, auth, project_id, batch_size=30)

    _index, pid = wait_for(lambda: running_batch(database_url, task["id"]), timeout=60,
                           message="the batch past its first checkpoint")
    assert pid != worker.pid
    psutil.Process(pid).kill()  # only the pool child; the worker's main process replaces it

    assert wait_final(database_url, task["id"], timeout=90) == "completed"
    assert result_count(database_url, task["id"]) == 30
    assert duplicate_results(database_url, task["id"]) == 0
    assert (simulator_calls(simulator) - 60) / 2 <= CHECKPOINT_EVERY


def test_the_same_batch_delivered_twice_at_once(app, client, auth, project_id, database_url: str,
                                                processes: ProcessGroup, monkeypatch, beat) -> None:
    simulator = sim(processes, latency=0.15)
    env = engine_env(simulator, SIM_MAX_CONCURRENCY=2)
    configure_app(app, monkeypatch, simulator, SIM_MAX_CONCURRENCY=2)
    add_records(app, project_id, 24)
    for name in ("w1", "w2"):
        processes.start_worker(database_url, name, concurrency=1, **env)
    wait_for(lambda: scalar(database_url, "SELECT count(*) FROM kombu_queue") > 0, timeout=60,
             message="workers consuming")
    task = start_run(client, auth, project_id, batch_size=24)
    celery_id = scalar(database_url, "SELECT celery_task_id FROM screening_batches WHERE task_id = %s", task["id"])
    with app.app_context():
        app.extensions["celery"].send_task(task_names.SCREEN_BATCH, args=[task["id"], 0], task_id=celery_id)

    seen_final_while_running = []

    def finished() -> bool:
        batch = query(database_url, "SELECT status FROM screening_batches WHERE task_id = %s", task["id"])[0][0]
        status = task_status(database_url, task["id"])
        if batch == "running" and status in ("completed", "completed_with_errors", "failed", "cancelled"):
            seen_final_while_running.append(status)
        return status == "completed"

    wait_for(finished, timeout=60, interval=0.05, message="the task to complete")
    assert not seen_final_while_running  # the ignored delivery did not complete the chord early
    assert result_count(database_url, task["id"]) == 24
    assert duplicate_results(database_url, task["id"]) == 0
    assert simulator_calls(simulator) == 48  # screened by one delivery only
    assert scalar(database_url, "SELECT attempts FROM screening_batches WHERE task_id = %s", task["id"]) == 1
    completed_at, batch_done_at = query(
        database_url, "SELECT t.completed_at, b.completed_at FROM screening_tasks t JOIN screening_batches b "
                      "ON b.task_id = t.id WHERE t.id = %s", task["id"])[0]
    assert completed_at >= batch_done_at


def test_warm_shutdown_mid_batch_then_a_new_worker(app, client, auth, project_id, database_url: str,
                                                   processes: ProcessGroup, monkeypatch, beat) -> None:
    simulator = sim(processes, latency=0.15)
    env = engine_env(simulator, SIM_MAX_CONCURRENCY=2)
    configure_app(app, monkeypatch, simulator, SIM_MAX_CONCURRENCY=2)
    add_records(app, project_id, 40)
    first = processes.start_worker(database_url, "w1", concurrency=1, **env)
    task = start_run(client, auth, project_id, batch_size=20)
    wait_for(lambda: running_batch(database_url, task["id"]), timeout=60, message="a batch mid-way")
    first.send_signal(signal.SIGTERM)  # warm shutdown of the main process: finish the running batch, then exit
    first.wait(timeout=60)

    processes.start_worker(database_url, "w2", concurrency=1, **env)
    beat(env)
    assert wait_final(database_url, task["id"], timeout=90) == "completed"
    assert result_count(database_url, task["id"]) == 40
    assert duplicate_results(database_url, task["id"]) == 0
    assert (simulator_calls(simulator) - 80) / 2 <= CHECKPOINT_EVERY


def test_database_connections_terminated_mid_run(app, client, auth, project_id, database_url: str,
                                                 processes: ProcessGroup, monkeypatch, beat) -> None:
    simulator = sim(processes, latency=0.1)
    env = engine_env(simulator, SIM_MAX_CONCURRENCY=2)
    configure_app(app, monkeypatch, simulator, SIM_MAX_CONCURRENCY=2)
    add_records(app, project_id, 40)
    processes.start_worker(database_url, "w1", concurrency=2, **env)
    beat(env)
    task = start_run(client, auth, project_id, batch_size=20)

    terminated = 0
    for threshold in (5, 20):
        wait_for(lambda t=threshold: result_count(database_url, task["id"]) >= t, timeout=60,
                 message=f"{threshold} results")
        terminated += scalar(database_url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                           "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                                           "AND backend_type = 'client backend'")
    assert terminated > 0

    assert wait_final(database_url, task["id"], timeout=120) == "completed"
    assert result_count(database_url, task["id"]) == 40
    assert duplicate_results(database_url, task["id"]) == 0


def test_cancel_stops_a_run_within_one_checkpoint(app, client, auth, project_id, database_url: str,
                                                  processes: ProcessGroup, monkeypatch, beat) -> None:
    simulator = sim(processes, latency=0.15)
    env = engine_env(simulator, SIM_MAX_CONCURRENCY=2)
    configure_app(app, monkeypatch, simulator, SIM_MAX_CONCURRENCY=2)
    add_records(app, project_id, 60)
    processes.start_worker(database_url, "w1", concurrency=1, **env)
    task = start_run(client, auth, project_id, batch_size=30)
    wait_for(lambda: result_count(database_url, task["id"]) >= 5, timeout=60, message="some results")

    response = client.post(f"/api/v1/asl/tasks/{task['id']}/cancel", headers=auth)
    assert response.status_code == 202
    at_cancel = result_count(database_url, task["id"])

    assert wait_final(database_url, task["id"], timeout=60) == "cancelled"
    after = result_count(database_url, task["id"])
    assert after - at_cancel <= CHECKPOINT_EVERY
    assert after < 60
    assert scalar(database_url, "SELECT count(*) FROM screening_batches WHERE task_id = %s AND status = "
                                "'cancelled'", task["id"]) == 2
    calls = simulator_calls(simulator)
    time.sleep(1.0)
    assert simulator_calls(simulator) == calls  # nothing keeps screening
    assert client.post(f"/api/v1/asl/tasks/{task['id']}/cancel", headers=auth).status_code == 409

    # retry re-runs the cancelled remainder on the same task
    assert client.post(f"/api/v1/asl/tasks/{task['id']}/retry", headers=auth).status_code == 202
    assert wait_final(database_url, task["id"], timeout=60) == "completed"
    assert result_count(database_url, task["id"]) == 60
    assert duplicate_results(database_url, task["id"]) == 0


def test_a_batch_that_exhausts_its_retries_fails_and_retry_completes(app, client, auth, project_id,
                                                                     database_url: str, processes: ProcessGroup,
                                                                     monkeypatch, beat) -> None:
    port = free_port()
    down = f"http://127.0.0.1:{port}/v1"  # nothing listens yet: every call is a connection error
    env = {**engine_env(sim_placeholder(down)), "LLM_MAX_ATTEMPTS": "1"}
    for key, value in env.items():
        monkeypatch.setitem(app.config, key, value)
    add_records(app, project_id, 20)
    processes.start_worker(database_url, "w1", concurrency=2, **env)
    task = start_run(client, auth, project_id, batch_size=10)

    assert wait_final(database_url, task["id"], timeout=90) == "failed"
    batches = query(database_url, "SELECT status, attempts, error FROM screening_batches WHERE task_id = %s",
                    task["id"])
    assert all(status == "failed" and attempts == 4 and "LLMUnavailable" in error
               for status, attempts, error in batches)  # 1 try + 3 Celery retries
    body = client.get(f"/api/v1/asl/tasks/{task['id']}", headers=auth).get_json()
    assert body["status"] == "failed" and "batches failed" in body["error"]

    simulator = sim(processes, latency=0.02, port=port)  # the provider is back
    assert client.post(f"/api/v1/asl/tasks/{task['id']}/retry", headers=auth).status_code == 202
    assert wait_final(database_url, task["id"], timeout=60) == "completed"
    assert result_count(database_url, task["id"]) == 20
    assert simulator_calls(simulator) == 40
    assert scalar(database_url, "SELECT attempt FROM screening_tasks WHERE id = %s", task["id"]) == 2


def test_a_message_lost_before_it_started_is_resent(app, client, auth, project_id, database_url: str,
                                                    processes: ProcessGroup, monkeypatch, beat) -> None:
    """A batch message that vanished from the broker (a killed worker had fetched it) is re-sent by the sweeper."""
    simulator = sim(processes, latency=0.02)
    env = engine_env(simulator)
    configure_app(app, monkeypatch, simulator)
    add_records(app, project_id, 30)
    task = start_run(client, auth, project_id, batch_size=10)  # no worker yet: the messages wait in the queue
    lost_id = scalar(database_url, "SELECT celery_task_id FROM screening_batches WHERE task_id = %s AND "
                                   "batch_index = 0", task["id"])
    deleted = query(database_url, "DELETE FROM kombu_message WHERE payload LIKE %s RETURNING id", f"%{lost_id}%")
    assert len(deleted) == 1

    processes.start_worker(database_url, "w1", concurrency=2, **env)
    beat(env)
    assert wait_final(database_url, task["id"], timeout=60) == "completed"
    assert result_count(database_url, task["id"]) == 30
    assert duplicate_results(database_url, task["id"]) == 0
    assert scalar(database_url, "SELECT celery_task_id FROM screening_batches WHERE task_id = %s AND "
                                "batch_index = 0", task["id"]) == lost_id  # re-sent under the same id
