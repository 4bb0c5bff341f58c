"""A trivial task runs on a real ``celery worker`` subprocess, on the test server and on the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from app import task_names
from tests.support.processes import ProcessGroup

pytestmark = pytest.mark.process  # workers and the Celery app in subprocesses


def test_ping_runs_on_a_worker_subprocess(app, database_url: str, processes: ProcessGroup) -> None:
    processes.start_worker(database_url, "ping-worker")
    celery = app.extensions["celery"]
    with app.app_context():
        result = celery.send_task(task_names.PING, args=[41])
        assert result.get(timeout=60)["value"] == 42


PUBLISH_AND_WAIT = """
from app import create_app
from app import task_names
app = create_app()
celery = app.extensions["celery"]
print(celery.send_task(task_names.PING, args=[1]).get(timeout=60)["server_version"])
"""


def test_ping_on_the_embedded_default(processes: ProcessGroup) -> None:
    """With no DATABASE_URL: migrate, run a worker and publish, all on one embedded PostgreSQL."""
    instance = Path(tempfile.mkdtemp(prefix="ls-emb-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env["LITSCREEN_INSTANCE_DIR"] = str(instance)
    subprocess.run([sys.executable, "-m", "app.cli", "db", "upgrade"], env=env, check=True, capture_output=True)
    worker = processes.start(
        [sys.executable, "-m", "celery", "-A", "tasks.diagnostic_worker", "worker", "--concurrency", "1",
         "--hostname", "emb@%h",
         "--without-mingle", "--without-gossip"], env, "embedded-worker")
    try:
        out = subprocess.run([sys.executable, "-c", PUBLISH_AND_WAIT], env=env, check=True, capture_output=True,
                             text=True, timeout=120)
        assert out.stdout.strip().split(".")[0] == "18"  # PostgreSQL 18 from the wheel
    finally:
        processes.stop_all()
        subprocess.run([sys.executable, "-m", "app.cli", "db", "stop"], env=env, capture_output=True)
    assert worker.poll() is not None
    assert not (instance / "pgdata" / "postmaster.pid").exists()


LIST_TASKS = """
import importlib, sys

module = importlib.import_module(sys.argv[1])
print(" ".join(sorted(name for name in module.app.tasks if name.startswith("litscreen."))))
"""


def test_diagnostic_tasks_are_registered_only_by_the_test_worker_entry(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}

    def registered(entry: str) -> set[str]:
        out = subprocess.run([sys.executable, "-c", LIST_TASKS, entry], env=env, check=True, capture_output=True,
                             text=True, timeout=120)
        return set(out.stdout.split())

    production, diagnostic = registered("tasks.celery"), registered("tasks.diagnostic_worker")
    probes = {task_names.PING, task_names.DIAG_RECORD_EXECUTION, task_names.DIAG_NOOP, task_names.DIAG_STOP_OWN_WORKER}
    assert {task_names.SCREEN_BATCH, task_names.FINALIZE_TASK, task_names.SWEEP} <= production
    assert production & probes == set()
    assert diagnostic == production | probes
