"""Celery drives the PostgreSQL transport from its event loop, as it drives Redis, so a worker's shutdown never
hangs: SIGTERM to the whole process tree of a ``--concurrency 2`` worker (what a supervisor stopping a process
group does, pool children signalled too) completes, idle or busy, with real ``celery worker`` subprocesses."""

from __future__ import annotations

import signal
import subprocess

import psutil
import pytest

from app import task_names
from tasks.broker.transport import Transport
from tests.support.broker import executions, query, start_workers
from tests.support.processes import ProcessGroup, wait_for

pytestmark = pytest.mark.slow


def test_the_transport_offers_what_celerys_event_loop_needs() -> None:
    assert Transport.implements.asynchronous is True
    for hook in ("register_with_event_loop", "on_readable", "on_poll_start", "on_poll_timer"):
        assert callable(getattr(Transport, hook))


def tree(process: subprocess.Popen) -> list[psutil.Process]:
    parent = psutil.Process(process.pid)
    return [parent, *parent.children(recursive=True)]


def alive(processes: list[psutil.Process]) -> list[int]:
    return [p.pid for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_sigterm_to_the_whole_process_tree_of_a_concurrency_2_worker_completes_shutdown(
        app, database_url: str, processes: ProcessGroup, busy: bool) -> None:
    (worker,) = start_workers(processes, database_url, [f"tree-{busy}"], concurrency=2,
                              BROKER_VISIBILITY_TIMEOUT="600")
    wait_for(lambda: len(tree(worker)) >= 3, 30, message="main process and two pool children")
    members = tree(worker)
    if busy:
        app.extensions["celery"].send_task(task_names.DIAG_RECORD_EXECUTION, args=["tree-busy", 3.0],
                                           ignore_result=True)
        wait_for(lambda: executions(database_url, "start", "tree-busy"), 60, message="task running")

    ProcessGroup.kill_tree(worker, signal.SIGTERM)
    worker.wait(timeout=60)  # a wedged pool would hang here (and fail the test)
    wait_for(lambda: not alive(members), 30, message="every process of the tree gone")
    log = worker.log_path.read_text(errors="replace")  # type: ignore[attr-defined]
    assert "Unrecoverable error" not in log
    if busy:
        # the child running the task was terminated by the SIGTERM: its message is not lost (task_reject_on_
        # worker_lost hands it back, or it stays unacked until its deadline), it was never acked as done
        rows = query(database_url, "SELECT count(*) FROM kombu_message m JOIN kombu_queue q ON q.id = m.queue_id "
                                   "WHERE q.name = 'celery'")
        finished = executions(database_url, "finish", "tree-busy")
        assert finished or rows == [(1,)]


def test_an_idle_worker_exits_on_sigterm_to_its_main_process(database_url: str, processes: ProcessGroup) -> None:
    (worker,) = start_workers(processes, database_url, ["idle-main"], concurrency=2)
    members = tree(worker)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    wait_for(lambda: not alive(members), 30, message="pool children gone")
    log = worker.log_path.read_text(errors="replace")  # type: ignore[attr-defined]
    assert "Warm shutdown" in log and "Traceback" not in log
