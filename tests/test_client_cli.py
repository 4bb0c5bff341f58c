"""The terminal client (`litscreen import / screen / watch / export`) against a live HTTP server.

The server is the litscreen app on the test database served by werkzeug in a thread (real HTTP on loopback);
the CLI runs as a subprocess, so what is tested is exactly what a terminal user runs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import FIXTURES, SIM_MODELS, LiveServer, assert_clean_error, run_cli
from tests.support.processes import ProcessGroup

pytestmark = pytest.mark.process  # every test runs the litscreen command

def test_import_a_ris_file(live_server: LiveServer, make_token, project_id: int) -> None:
    token = make_token("alice")
    result = run_cli("import", str(project_id), str(FIXTURES / "scopus_export.ris"), url=live_server.url, token=token)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported 6, duplicates 0, skipped 0"

    again = run_cli("import", str(project_id), str(FIXTURES / "scopus_export.ris"), url=live_server.url, token=token)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "imported 0, duplicates 6, skipped 0"

    listed = httpx.get(f"{live_server.url}/api/v1/asl/projects/{project_id}/literatures",
                       headers={"Authorization": f"Bearer {token}"}).json()
    assert len(listed) == 6


def test_errors_are_one_clear_line_without_the_token(live_server: LiveServer, make_token, project_id: int,
                                                   tmp_path: Path) -> None:
    token = make_token("alice")
    wrong = "lsk_not-a-real-token-0123456789"
    assert_clean_error(run_cli("import", str(project_id), str(FIXTURES / "scopus_export.ris"),
                               url=live_server.url, token=wrong), "HTTP 401", "LITSCREEN_TOKEN", secret=wrong)
    assert_clean_error(run_cli("import", "999999", str(FIXTURES / "scopus_export.ris"), url=live_server.url,
                               token=token), "HTTP 404", "Project 999999 not found", secret=token)
    garbage = tmp_path / "notes.txt"
    garbage.write_text("this is not a bibliographic export\n")
    assert_clean_error(run_cli("import", str(project_id), str(garbage), url=live_server.url, token=token),
                       "HTTP 4", secret=token)
    assert_clean_error(run_cli("watch", "1", url=live_server.url, token=None), "no API token")
    # nobody listens on the port of a stopped server
    live_server.stop()
    assert_clean_error(run_cli("export", "1", url=live_server.url, token=token), "cannot reach the litscreen API",
                       secret=token)


# -- screening through the terminal client (needs the engine's endpoints, a worker and the simulator) ------

@pytest.fixture
def screening_server(database_url: str, processes: ProcessGroup) -> Iterator[tuple[LiveServer, str]]:
    """A live API configured with the two simulated models, one real worker, and the simulator."""
    from app import create_app
    from tests.support.simulator import start_simulator

    simulator = start_simulator(processes)
    config = {"DATABASE_URL": database_url, "TESTING": True, "SCREENING_MODELS": SIM_MODELS,
              "SIM_BASE_URL": simulator.base_url}
    processes.start_worker(database_url, "client-worker", concurrency=1, SCREENING_MODELS=SIM_MODELS,
                           SIM_BASE_URL=simulator.base_url)
    server = LiveServer(create_app(config))
    try:
        yield server, simulator.base_url
    finally:
        server.stop()


def test_screen_watch_and_export(screening_server, make_token, project_id: int, tmp_path: Path) -> None:
    server, _ = screening_server
    token = make_token("alice")
    imported = run_cli("import", str(project_id), str(FIXTURES / "pubmed_medline_balloon-guide-catheter.nbib"),
                       url=server.url, token=token)
    assert imported.returncode == 0, imported.stderr
    count = int(imported.stdout.split()[1].rstrip(","))
    assert count > 0

    started = run_cli("screen", str(project_id), "--batch-size", "20", url=server.url, token=token)
    assert started.returncode == 0, started.stderr
    task_id = int(started.stdout.strip())

    watched = run_cli("watch", str(task_id), "--interval", "0.2", url=server.url, token=token, timeout=300)
    assert watched.returncode == 0, watched.stderr
    assert f"task {task_id} completed" in watched.stderr

    out = tmp_path / "results.csv"
    exported = run_cli("export", str(task_id), "-o", str(out), url=server.url, token=token)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == count
    assert {row["decision"] for row in rows} <= {"include", "exclude", "conflict", ""}
    assert {row["literature_id"] for row in rows} == {str(r["id"]) for r in httpx.get(
        f"{server.url}/api/v1/asl/projects/{project_id}/literatures", params={"page_size": 500},
        headers={"Authorization": f"Bearer {token}"}).json()}

    ris = run_cli("export", str(task_id), "--format", "ris", url=server.url, token=token)
    assert ris.returncode == 0, ris.stderr
    assert ris.stdout.count("ER  -") == count


@pytest.mark.parametrize(("status", "exit_code"), [("failed", 1), ("cancelled", 2)])
def test_watch_exits_non_zero_when_the_task_fails_or_is_cancelled(
        app, live_server: LiveServer, make_token, project_id: int, status: str,  # type: ignore[no-untyped-def]
        exit_code: int) -> None:
    from app.extensions import db
    from app.models import ScreeningTask

    token = make_token("alice")
    with app.app_context():  # a finished task row, as the engine leaves it
        task = ScreeningTask(project_id=project_id, task_type="title_abstract", status=status, total_items=10,
                             total_batches=1, batch_size=10, processed_items=4, success_items=4,
                             error="simulated failure" if status == "failed" else None)
        db.session().add(task)
        db.session().commit()
        task_id = task.id
    result = run_cli("watch", str(task_id), "--interval", "0.2", url=live_server.url, token=token)
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert f"task {task_id} {status}" in result.stderr
    assert "Traceback" not in result.stderr
