"""The README's "first hour", followed step by step on a fresh database: db create, db upgrade, the stack, a user,
a token, a project, an import, screening, watch, export and doctor — each as the operator types it, against
gunicorn, a worker and beat started as the Procfile starts them."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.support.cli import FIXTURES, SIM_MODELS
from tests.support.database import conninfo
from tests.support.engine import start_beat
from tests.support.fleet import Fleet
from tests.support.processes import ProcessGroup, wait_for
from tests.support.simulator import start_simulator

ROOT = Path(__file__).resolve().parents[1]
PICOS = {"picos": {"P": "patients undergoing thrombectomy for acute ischaemic stroke",
                   "I": "balloon guide catheter", "C": "conventional guide catheter",
                   "O": "recanalisation, functional outcome", "S": "cohort studies and trials"}}


@pytest.mark.process
def test_the_first_hour_on_a_fresh_database(admin_database_url: str, processes: ProcessGroup,
                                             tmp_path: Path) -> None:
    name = f"litscreen_first_hour_{uuid.uuid4().hex[:8]}"
    url = make_url(admin_database_url).set(database=name).render_as_string(hide_password=False)
    stack_env = {"DATABASE_URL": url, "SCREENING_MODELS": SIM_MODELS, "SWEEP_INTERVAL_SECONDS": "1",
                 "PYTHONUNBUFFERED": "1"}

    def litscreen(*args: str, **extra: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "LITSCREEN_"))}
        env.update(stack_env)
        env.update(extra)
        result = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=300)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    try:
        created = litscreen("db", "create")
        assert created.returncode == 0 and f"database {name} created" in created.stderr, created.stderr
        assert litscreen("db", "upgrade").returncode == 0

        # make up: gunicorn, a worker and beat as the Procfile runs them, and an LLM provider (the simulator)
        simulator = start_simulator(processes)
        stack_env["SIM_BASE_URL"] = simulator.base_url
        process_env = {k: v for k, v in stack_env.items() if k != "DATABASE_URL"}
        fleet = Fleet(processes, url, process_env)
        fleet.start_worker("first-hour", concurrency=2)
        start_beat(processes, url, process_env)
        fleet.start_web(workers=1)
        api = {"LITSCREEN_API_URL": fleet.web_url}

        user = litscreen("users", "create", "alice")
        assert user.returncode == 0 and user.stdout.strip().isdigit(), user.stderr
        token_result = litscreen("tokens", "create", "alice", "--expires-in", "90")
        assert token_result.returncode == 0, token_result.stderr
        api["LITSCREEN_TOKEN"] = token_result.stdout.strip()

        picos = tmp_path / "picos.json"
        picos.write_text(json.dumps(PICOS))
        project = litscreen("projects", "create", "Balloon guide catheters", "--picos-file", str(picos), **api)
        assert project.returncode == 0, project.stderr
        project_id = project.stdout.strip()

        imported = litscreen("import", project_id, str(FIXTURES / "pubmed_medline_balloon-guide-catheter.nbib"),
                             **api)
        assert imported.returncode == 0, imported.stderr
        records = int(imported.stdout.split()[1].rstrip(","))
        assert records > 0 and "format " in imported.stderr and "encoding " in imported.stderr

        screened = litscreen("screen", project_id, **api)
        assert screened.returncode == 0, screened.stderr
        task_id = screened.stdout.strip()
        watched = litscreen("watch", task_id, "--interval", "0.3", **api)
        assert watched.returncode == 0 and f"task {task_id} completed" in watched.stderr, watched.stderr

        out = tmp_path / "results.csv"
        exported = litscreen("export", task_id, "-o", str(out), **api)
        assert exported.returncode == 0, exported.stderr
        assert len(list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))) == records

        def swept() -> bool:
            with psycopg.connect(conninfo(url)) as conn:
                row = conn.execute("SELECT count(*) FROM maintenance_runs "
                                   "WHERE job = 'litscreen.maintenance.sweep'").fetchone()
            return bool(row and row[0])

        wait_for(swept, timeout=90, message="beat's sweeper to run on the worker")
        doctor = litscreen("doctor", "--timeout", "2")
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "✗" not in doctor.stdout
    finally:
        processes.stop_all()
        with psycopg.connect(conninfo(admin_database_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
