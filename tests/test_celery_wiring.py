"""A trivial task runs on a real ``celery worker`` subprocess, on the test server and on the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path


from app import task_names
from tests.support.processes import ProcessGroup


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
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--concurrency", "1", "--hostname", "emb@%h",
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
