"""A restarting or full PostgreSQL is a wait for Celery workers on our transport, never a crash.

On a private server this test starts itself (``tests/support/pgcluster.py``, never a shared one): an idle worker
and a worker busy with a long task keep running while the server restarts (``pg_ctl restart -m fast``, every
connection dropped), and then while it is full ("too many clients") and their connections are terminated, so
every reconnect is refused for several seconds. Afterwards no
worker process has exited, the running task finished exactly once, and new tasks run on both workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import pytest
from celery import Celery

import celeryconfig
from app import task_names
from tests.support.broker import BROKER_ENV, executions, wait_ready
from tests.support.processes import ProcessGroup, wait_for

pytestmark = pytest.mark.slow

# Deadlines far beyond the outage: this test is about waiting, not about the visibility timeout.
ENV = {**BROKER_ENV, "BROKER_VISIBILITY_TIMEOUT": "120"}
FULL_SECONDS = 8
LONG_TASK_SECONDS = FULL_SECONDS + 8  # its last write happens after the server is back


@pytest.fixture
def cluster(pg_cluster):  # type: ignore[no-untyped-def]
    return pg_cluster(max_connections=30)


@pytest.fixture
def publisher(cluster) -> Iterator[tuple[Celery, str]]:  # type: ignore[no-untyped-def]
    """A Celery client on the private server (not the session's shared app, which points elsewhere)."""
    url = cluster.create_database()
    client = Celery("restart-test", set_as_current=False)
    client.config_from_object(celeryconfig)
    client.conf.broker_url = celeryconfig.broker_url_for(url)
    try:
        yield client, url
    finally:
        client.close()


def process_tree(pid: int) -> set[int]:
    parent = psutil.Process(pid)
    return {parent.pid, *(child.pid for child in parent.children(recursive=True))}


def test_workers_ride_out_a_server_restart_and_a_full_server(cluster, publisher, processes: ProcessGroup) -> None:  # type: ignore[no-untyped-def]
    client, url = publisher
    busy = processes.start_worker(url, "busy", concurrency=1, queues="celery", **ENV)
    idle = processes.start_worker(url, "idle", concurrency=1, queues=celeryconfig.MAINTENANCE_QUEUE, **ENV)
    for worker in (busy, idle):
        wait_ready(worker)
    trees = {worker.pid: process_tree(worker.pid) for worker in (busy, idle)}

    client.send_task(task_names.DIAG_RECORD_EXECUTION, args=["rs-long", LONG_TASK_SECONDS], queue="celery",
                     ignore_result=True)
    wait_for(lambda: executions(url, "start", "rs-long"), 60, message="long task running")

    cluster.restart()  # every connection dropped; the workers reconnect as soon as the server is back
    client.send_task(task_names.DIAG_RECORD_EXECUTION, args=["rs-restarted"], queue=celeryconfig.MAINTENANCE_QUEUE,
                     ignore_result=True)
    wait_for(lambda: executions(url, "finish", "rs-restarted"), 60, message="a task after the restart")
    with cluster.filled(evict=True) as held:
        assert held, "the server should have had free slots to fill"
        assert cluster.evicted >= 4  # both workers' broker and LISTEN connections, at least
        time.sleep(FULL_SECONDS)  # every reconnect attempt meanwhile is refused: too many clients
    for worker in (busy, idle):
        assert worker.poll() is None, f"{worker.log_path.name} exited during the outage"  # type: ignore[attr-defined]

    for i in range(3):
        client.send_task(task_names.DIAG_RECORD_EXECUTION, args=[f"rs-after-busy-{i}"], queue="celery",
                         ignore_result=True)
        client.send_task(task_names.DIAG_RECORD_EXECUTION, args=[f"rs-after-idle-{i}"],
                         queue=celeryconfig.MAINTENANCE_QUEUE, ignore_result=True)
    wait_for(lambda: len(executions(url, "finish", "rs-after-idle-")) == 3, 90, message="idle worker runs tasks")
    wait_for(lambda: len(executions(url, "finish", "rs-long")) == 1, 90, message="long task finished")
    wait_for(lambda: len(executions(url, "finish", "rs-after-busy-")) == 3, 90, message="busy worker runs tasks")

    assert len(executions(url, "start", "rs-long")) == 1  # ran once: its delivery was neither lost nor doubled
    for worker in (busy, idle):
        assert worker.poll() is None
        assert process_tree(worker.pid) == trees[worker.pid]  # not one process of either worker exited
        log = worker.log_path.read_text(errors="replace")  # type: ignore[attr-defined]
        assert "Unrecoverable error" not in log
        assert "too many clients" in log  # it did meet the full server (and waited)
