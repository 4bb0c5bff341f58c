"""``litscreen watch`` says what a low rate does not: a batch waiting on a retry (the reason and when it runs
again), a batch that failed, a run that paused. A real worker screens against an LLM provider that is down."""

from __future__ import annotations

import pytest

from tests.support.cli import SIM_MODELS, LiveServer, run_cli
from tests.support.engine import add_records
from tests.support.pgcluster import free_port
from tests.support.processes import ProcessGroup

pytestmark = pytest.mark.process  # every test runs the litscreen command


def test_watch_shows_a_batch_retrying_then_failing(database_url: str, processes: ProcessGroup, make_token,
                                                   project_id: int, app, fast_teardown) -> None:
    from app import create_app

    down = f"http://127.0.0.1:{free_port()}/v1"  # the provider is down: nothing listens there
    env = {"SCREENING_MODELS": SIM_MODELS, "SIM_BASE_URL": down, "LLM_MAX_ATTEMPTS": "1", "LLM_CACHE": "off",
           "SCREENING_MAX_RETRIES": "1", "SCREENING_RETRY_BACKOFF_SECONDS": "4"}
    processes.start_worker(database_url, "watch-worker", concurrency=1, **env)
    server = LiveServer(create_app({"DATABASE_URL": database_url, "TESTING": True, **env}))
    try:
        add_records(app, project_id, 5)
        token = make_token("alice")
        started = run_cli("screen", str(project_id), "--batch-size", "10", url=server.url, token=token)
        assert started.returncode == 0, started.stderr
        task_id = int(started.stdout.strip())

        watched = run_cli("watch", str(task_id), "--interval", "0.2", url=server.url, token=token, timeout=300)
    finally:
        server.stop()
    output = watched.stdout + watched.stderr
    told = " ".join(watched.stderr.split())
    assert "Traceback" not in output
    assert "batch 0 retrying (attempt 2): LLMUnavailable: sim:model-a unavailable" in told, output
    assert "connection error" in told and "; next attempt at " in told
    assert "batch 0 failed after 2 attempts" in told, output
    assert told.count("batch 0 retrying") == 1  # told once, not at every poll
    assert watched.returncode in (0, 1)


def test_watch_ends_on_a_paused_run_with_its_reason(app, live_server: LiveServer, make_token,
                                                    project_id: int) -> None:
    from app.extensions import db
    from app.models import ScreeningTask

    token = make_token("alice")
    with app.app_context():  # a run paused by its budget, as the engine leaves it
        task = ScreeningTask(project_id=project_id, task_type="title_abstract", status="paused", total_items=10,
                             total_batches=1, batch_size=10, processed_items=4, success_items=4)
        db.session().add(task)
        db.session().commit()
        task_id = task.id
    result = run_cli("watch", str(task_id), "--interval", "0.2", url=live_server.url, token=token)
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"task {task_id} paused" in result.stderr
    assert f"/api/v1/asl/tasks/{task_id}/resume" in result.stderr
