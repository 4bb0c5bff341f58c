"""Warm shutdown on the PostgreSQL broker with real ``celery worker`` subprocesses: a worker asked to stop
(SIGTERM to its main process) finishes its running task, starts nothing new, and leaves every other message
visible at once for the next worker (not only after the visibility timeout)."""

from __future__ import annotations

import os
import signal

import pytest

from app import task_names
from tests.support.broker import executions, query, start_workers
from tests.support.processes import ProcessGroup, wait_for

# A visibility timeout far beyond every wait below: a message the stopping worker kept would stay invisible for
# the whole test, so the new worker can only run it if the stopping worker handed it back.
SHUTDOWN_ENV = {"BROKER_VISIBILITY_TIMEOUT": "600"}


def celery_messages(database_url: str) -> list[tuple[bool, int]]:
    """``(visible, deliveries)`` of every message in the ``celery`` queue, oldest first."""
    return query(database_url, "SELECT m.visible, m.deliveries FROM kombu_message m "
                               "JOIN kombu_queue q ON q.id = m.queue_id WHERE q.name = 'celery' ORDER BY m.id")


def names(values: list[dict]) -> list[str]:
    return [value["worker"].split("@")[0] for value in values]


@pytest.mark.parametrize("how", ["sigterm-while-running", "sigterm-as-the-task-ends"])
def test_warm_shutdown_finishes_the_running_task_and_leaves_the_next_one_queued(
        app, database_url: str, processes: ProcessGroup, how: str) -> None:
    (stopping,) = start_workers(processes, database_url, [f"stopping-{how}"], concurrency=1, **SHUTDOWN_ENV)
    celery = app.extensions["celery"]

    if how == "sigterm-while-running":
        celery.send_task(task_names.DIAG_RECORD_EXECUTION, args=["sd-first", 4.0], ignore_result=True)
    else:  # the task sends SIGTERM to its own worker and ends at once: shutdown request and free slot coincide
        celery.send_task(task_names.DIAG_STOP_OWN_WORKER, args=["sd-first"], ignore_result=True)
    celery.send_task(task_names.DIAG_RECORD_EXECUTION, args=["sd-second", 2.0], ignore_result=True)
    wait_for(lambda: executions(database_url, "start", "sd-first"), 60, message="first task running")
    if how == "sigterm-while-running":
        os.kill(stopping.pid, signal.SIGTERM)  # the worker's main process only: a warm shutdown

    stopping.wait(timeout=60)
    log = stopping.log_path.read_text(errors="replace")  # type: ignore[attr-defined]
    assert "Warm shutdown" in log
    assert stopping.returncode == 0
    assert names(executions(database_url, "finish", "sd-first")) == [f"stopping-{how}"]  # it finished its task
    assert executions(database_url, "start", "sd-second") == []  # ... and started nothing new
    # the next message is still queued and visible (when the shutdown request lands while it is being fetched,
    # the worker hands it back at once: visible again with one delivery counted)
    assert [visible for visible, _ in celery_messages(database_url)] == [True]
    if how == "sigterm-while-running":
        assert celery_messages(database_url) == [(True, 0)]  # its slot was busy: never even fetched

    start_workers(processes, database_url, [f"next-{how}"], concurrency=1, **SHUTDOWN_ENV)
    wait_for(lambda: executions(database_url, "finish", "sd-second"), 60, message="second task run by the next worker")
    assert names(executions(database_url, "start", "sd-second")) == [f"next-{how}"]
    assert len(executions(database_url, "start", "sd-first")) == 1  # the first one ran exactly once
    wait_for(lambda: celery_messages(database_url) == [], 30, message="acked messages deleted")


def test_a_stopping_worker_hands_back_a_message_it_fetched_but_did_not_start(
        app, database_url: str, processes: ProcessGroup) -> None:
    """A task with a countdown is fetched and held (unacked) until it is due; a warm shutdown requeues it now."""
    (stopping,) = start_workers(processes, database_url, ["holder"], concurrency=1, **SHUTDOWN_ENV)
    celery = app.extensions["celery"]
    celery.send_task(task_names.DIAG_RECORD_EXECUTION, args=["sd-later"], countdown=3, ignore_result=True)
    wait_for(lambda: celery_messages(database_url) == [(False, 1)], 60, message="countdown task held by the worker")

    os.kill(stopping.pid, signal.SIGTERM)
    stopping.wait(timeout=60)
    assert executions(database_url, "start", "sd-later") == []
    assert celery_messages(database_url) == [(True, 1)]  # visible again at once, its delivery counted

    start_workers(processes, database_url, ["after-holder"], concurrency=1, **SHUTDOWN_ENV)
    wait_for(lambda: executions(database_url, "finish", "sd-later"), 60,
             message="countdown task run by the next worker")
    assert names(executions(database_url, "start", "sd-later")) == ["after-holder"]
