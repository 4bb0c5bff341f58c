"""Helpers shared by the engine tests (their fixtures ``fast_teardown`` and ``beat`` are in ``conftest.py``).

Everything is real: PostgreSQL, ``celery worker`` / ``celery beat`` subprocesses and the LLM simulator over HTTP.
Counts are read from the database; call counts from the simulator (with the LLM cache off).
"""

from __future__ import annotations

import sys
from typing import Any

import psycopg
from flask import Flask

from tests.support.database import conninfo
from tests.support.processes import ProcessGroup, wait_for
from tests.support.simulator import Simulator, start_simulator

MODELS = "sim:model-a,sim:model-b"
FINAL = ("completed", "completed_with_errors", "failed", "cancelled")

RELEVANT = ("Nudges and default options change physicians' prescribing: a randomised controlled trial of "
            "choice architecture reminders and feedback for guideline adherence among nurses and pharmacists")
IRRELEVANT = "Soil bacteria of alpine meadows and their nitrogen cycle across seasons"


def engine_env(simulator: Simulator, **extra: Any) -> dict[str, str]:
    """Worker environment: the simulator's two models, no LLM cache, short recovery clocks."""
    env = {
        "SCREENING_MODELS": MODELS, "SIM_BASE_URL": simulator.base_url, "LLM_CACHE": "off",
        "SIM_MAX_CONCURRENCY": "4", "LEASE_TTL_SECONDS": "3", "SWEEP_INTERVAL_SECONDS": "1",
        "DISPATCH_GRACE_SECONDS": "3", "CHECKPOINT_EVERY": "10", "CHECKPOINT_SECONDS": "1",
        "SCREENING_RETRY_BACKOFF_SECONDS": "1", "LLM_MAX_ATTEMPTS": "2", "LLM_RETRY_INITIAL_SECONDS": "0.1",
        "LLM_RETRY_MAX_SECONDS": "0.2", "LLM_RETRY_JITTER_SECONDS": "0", "WORKER_LOST_WAIT_SECONDS": "1",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def configure_app(app: Flask, monkeypatch: Any, simulator: Simulator, **extra: Any) -> None:
    """Point the test app (the publisher) at the same models and clocks as the workers."""
    for key, value in engine_env(simulator, **extra).items():
        monkeypatch.setitem(app.config, key, value)


def add_records(app: Flask, project_id: int, count: int, relevant_every: int = 3) -> list[int]:
    """Insert ``count`` records into the project (every ``relevant_every``-th one on topic)."""
    from app.extensions import db
    from app.models import Project
    from app.services.literature import import_records

    records = []
    for index in range(count):
        text = RELEVANT if index % relevant_every == 0 else IRRELEVANT
        records.append({"title": f"Record {index}: {text[:60]}", "abstract": f"{text} (study {index})",
                        "year": 2000 + index % 20, "doi": f"10.1000/test.{index}",
                        "authors": [f"Author {index}"], "journal": "Journal of Tests"})
    with app.app_context():
        session = db.session()
        project = session.get(Project, project_id)
        import_records(session, project, records)
        from sqlalchemy import select

        from app.models import Literature

        return list(session.scalars(select(Literature.id).where(Literature.project_id == project_id)))


def query(database_url: str, sql: str, *params: Any) -> list[tuple]:
    """Rows of ``sql`` on the test database (a fresh connection: never a cached ORM view)."""
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def scalar(database_url: str, sql: str, *params: Any) -> Any:
    return query(database_url, sql, *params)[0][0]


def task_status(database_url: str, task_id: int) -> str:
    return scalar(database_url, "SELECT status FROM screening_tasks WHERE id = %s", task_id)


def result_count(database_url: str, task_id: int) -> int:
    return scalar(database_url, "SELECT count(*) FROM screening_results WHERE task_id = %s", task_id)


def duplicate_results(database_url: str, task_id: int) -> int:
    return scalar(database_url, "SELECT count(*) - count(DISTINCT literature_id) FROM screening_results "
                                "WHERE task_id = %s", task_id)


def wait_final(database_url: str, task_id: int, timeout: float = 90) -> str:
    """Wait until the task reaches a final status; return it."""
    wait_for(lambda: task_status(database_url, task_id) in FINAL, timeout=timeout, interval=0.25,
             message=f"task {task_id} to finish")
    return task_status(database_url, task_id)


def start_beat(processes: ProcessGroup, database_url: str, env: dict[str, str], name: str = "beat") -> Any:
    """A real ``celery -A tasks beat`` subprocess (the sweeper's clock)."""
    from tests.support.processes import subprocess_env

    schedule = processes.log_dir / f"{name}-schedule"
    args = [sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "INFO", "-s", str(schedule)]
    return processes.start(args, subprocess_env(database_url, **env), name)


def start_run(client: Any, auth: dict[str, str], project_id: int, **body: Any) -> dict[str, Any]:
    """POST …/screening; returns the task document (asserting the 202)."""
    response = client.post(f"/api/v1/asl/projects/{project_id}/screening", json=body, headers=auth)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def sim(processes: ProcessGroup, latency: float = 0.1, **knobs: Any) -> Simulator:
    """The LLM simulator with ``latency`` seconds per answer."""
    return start_simulator(processes, latency=latency, **knobs)


def simulator_calls(simulator: Simulator) -> int:
    return int(simulator.stats()["calls_total"])


def logs(processes: ProcessGroup) -> str:
    """Every subprocess log (for assertion messages only; assertions read the database)."""
    return "\n".join(p.log_path.read_text(errors="replace")[-4000:] for p in processes.processes)


def running_batch(database_url: str, task_id: int, min_cursor: int = 1) -> tuple | None:
    """(batch_index, lease_owner pid) of a running batch past ``min_cursor`` items, if any."""
    rows = query(database_url, "SELECT batch_index, lease_owner, cursor, size FROM screening_batches "
                               "WHERE task_id = %s AND status = 'running' AND lease_owner IS NOT NULL "
                               "AND cursor >= %s AND cursor < size ORDER BY batch_index", task_id, min_cursor)
    if not rows:
        return None
    index, owner, _cursor, _size = rows[0]
    return index, int(owner.split(":")[1])


class sim_placeholder:  # noqa: N801 - a stand-in with the simulator's base_url for engine_env
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
