"""Remote control on the PostgreSQL broker: ``celery inspect ping`` and revoke (queued, and running with
terminate) against real worker subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys

from app import task_names
from tests.support.broker import BROKER_ENV, executions, messages_left, start_workers
from tests.support.processes import ROOT, ProcessGroup, subprocess_env, wait_for


def test_celery_inspect_ping_answers_from_both_workers(database_url: str, processes: ProcessGroup) -> None:
    start_workers(processes, database_url, ["ping-a", "ping-b"])

    def replies() -> dict:
        out = subprocess.run([sys.executable, "-m", "celery", "-A", "tasks", "inspect", "ping", "--json",
                              "--timeout", "5"], env=subprocess_env(database_url, **BROKER_ENV), cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        answers = json.loads(lines[-1]) if lines else {}
        names = {name.split("@")[0] for name in answers}
        return answers if {"ping-a", "ping-b"} <= names else {}

    answers = wait_for(replies, 60, interval=1, message="pong from both workers")
    assert all(reply == {"ok": "pong"} for reply in answers.values())


def test_revoke_stops_a_queued_task_and_terminate_stops_a_running_one(
        app, database_url: str, processes: ProcessGroup) -> None:
    start_workers(processes, database_url, ["revoker"], concurrency=1)
    celery = app.extensions["celery"]

    blocker = celery.send_task(task_names.DIAG_RECORD_EXECUTION, args=["rv-blocker", 3.0])
    wait_for(lambda: executions(database_url, "start", "rv-blocker"), 60, message="blocker running")
    queued = celery.send_task(task_names.DIAG_RECORD_EXECUTION, args=["rv-queued"])
    celery.control.revoke(queued.id)
    running = celery.send_task(task_names.DIAG_RECORD_EXECUTION, args=["rv-running", 60.0])

    wait_for(lambda: executions(database_url, "start", "rv-running"), 60, message="third task running")
    celery.control.revoke(running.id, terminate=True, signal="SIGKILL")

    with app.app_context():
        wait_for(lambda: running.state == "REVOKED", 60, message="running task revoked")
        wait_for(lambda: queued.state == "REVOKED", 60, message="queued task revoked")
        assert blocker.get(timeout=30).startswith("revoker@")
    assert executions(database_url, "start", "rv-queued") == []
    assert executions(database_url, "finish", "rv-running") == []
    wait_for(lambda: messages_left(database_url) == 0, 30, message="no message left to run again")
    assert len(executions(database_url, "start", "rv-running")) == 1
