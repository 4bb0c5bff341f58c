"""``litscreen doctor`` against a healthy stack and against each failure it names: no worker, no beat, schema
behind, provider down, connections near the limit (a private server), pooler settings that disagree.

The stack is real: the test database, ``celery worker`` and ``celery beat`` subprocesses, the simulator as an HTTP
server, and ``litscreen doctor`` run as the operator runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from app.config import load_settings
from app.services.doctor.checks import (
    Fleet,
    check_connections,
    check_pooler,
    check_providers,
    check_schema,
    fleet_connection_bound,
)
from app.services.doctor.database import DatabaseTarget
from tests.support import database
from tests.support.database import conninfo
from tests.support.engine import start_beat
from tests.support.pgcluster import free_port
from tests.support.processes import ProcessGroup, subprocess_env, wait_for
from tests.support.simulator import start_simulator

ROOT = Path(__file__).resolve().parents[1]
SIM_MODELS = "sim:model-a,sim:model-b"


def doctor(database_url: str, **env: str) -> subprocess.CompletedProcess:
    """``litscreen doctor`` as a subprocess with the stack's environment."""
    return subprocess.run([sys.executable, "-m", "app.cli", "doctor", "--timeout", "2"], cwd=ROOT,
                          env=subprocess_env(database_url, **env), capture_output=True, text=True, timeout=120)


def line(result: subprocess.CompletedProcess, name: str) -> str:
    """The report's line for check ``name`` (its mark, name and detail)."""
    for text in result.stdout.splitlines():
        if text[2:].startswith(name):
            return text
    raise AssertionError(f"no {name!r} line in:\n{result.stdout}\n{result.stderr}")


def sweeps_recorded(database_url: str) -> bool:
    with psycopg.connect(conninfo(database_url)) as conn:
        row = conn.execute("SELECT count(*) FROM maintenance_runs WHERE job = 'litscreen.maintenance.sweep'").fetchone()
    return bool(row and row[0])


@pytest.mark.process
def test_doctor_on_a_stack_without_workers_then_healthy_then_without_beat_and_provider(
        database_url: str, processes: ProcessGroup, fast_teardown) -> None:
    simulator = start_simulator(processes)
    env = {"SCREENING_MODELS": SIM_MODELS, "SIM_BASE_URL": simulator.base_url, "SWEEP_INTERVAL_SECONDS": "1"}

    # nothing runs yet but the database and the simulator
    bare = doctor(database_url, **env)
    assert bare.returncode == 1, bare.stdout + bare.stderr
    assert line(bare, "database").startswith("✓") and "127.0.0.1" in line(bare, "database")
    assert line(bare, "schema").startswith("✓")
    assert line(bare, "broker tables").startswith("✓")
    assert line(bare, "workers").startswith("✗") and "no worker answers" in line(bare, "workers")
    assert line(bare, "beat").startswith("✗") and "no sweeper run recorded" in line(bare, "beat")
    assert "fix: start beat" in bare.stdout and "fix: start workers" in bare.stdout
    assert "Traceback" not in bare.stdout + bare.stderr

    # a worker and beat: every check passes, exit status 0
    processes.start_worker(database_url, "doc", concurrency=2, **env)
    beat = start_beat(processes, database_url, env)
    wait_for(lambda: sweeps_recorded(database_url), timeout=90, message="beat's first sweep on the worker")
    healthy = doctor(database_url, **env)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "✗" not in healthy.stdout
    assert "doc@" in line(healthy, "workers") and "celery,maintenance; concurrency 2" in line(healthy, "workers")
    assert "sweeper ran" in line(healthy, "beat")
    assert "model-a, model-b" in line(healthy, "LLM provider sim")
    assert "(2 + 2·2)" in line(healthy, "connections") and "max_connections" in line(healthy, "connections")
    as_json = subprocess.run([sys.executable, "-m", "app.cli", "doctor", "--timeout", "2", "--json"], cwd=ROOT,
                             env=subprocess_env(database_url, **env), capture_output=True, text=True, timeout=120)
    assert as_json.returncode == 0
    report = json.loads(as_json.stdout)
    assert {check["name"] for check in report} >= {"database", "schema", "workers", "beat", "connections"}
    assert all(check["ok"] for check in report)

    # the provider is down (nothing listens there)
    down = doctor(database_url, **{**env, "SIM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"})
    assert down.returncode == 1
    assert line(down, "LLM provider sim").startswith("✗") and "cannot reach" in line(down, "LLM provider sim")

    # beat stopped long ago: its last sweep is an hour old
    ProcessGroup.kill_tree(beat)
    beat.wait(timeout=30)
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        conn.execute("UPDATE maintenance_runs SET last_run_at = now() - interval '1 hour'")
    stale = doctor(database_url, **env)
    assert stale.returncode == 1
    assert line(stale, "beat").startswith("✗") and "last maintenance run (sweeper) 36" in line(stale, "beat")


def test_schema_behind_is_named_with_the_fix(admin_database_url: str) -> None:
    from app.db.migrate import head_revision, upgrade

    url = database.create_database(admin_database_url)
    try:
        engine = create_engine(url, poolclass=NullPool)
        target = DatabaseTarget(url, embedded=False)
        empty = check_schema(engine, target)
        assert not empty.ok and empty.detail == "no schema yet" and empty.fix == "run `litscreen db upgrade`"
        upgrade(url, "0006")
        behind = check_schema(engine, target)
        assert not behind.ok and f"at migration 0006, the code needs {head_revision()}" == behind.detail
        upgrade(url)
        assert check_schema(engine, target).ok
        engine.dispose()
    finally:
        database.drop_database(admin_database_url, url)


def test_a_provider_without_key_or_url_is_named_and_the_key_never_shown() -> None:
    settings = load_settings({"SCREENING_MODELS": "deepseek:deepseek-chat,acme:big", "DEEPSEEK_API_KEY": ""})
    checks = {check.name: check for check in check_providers(settings, timeout=1)}
    assert not checks["LLM provider deepseek"].ok and checks["LLM provider deepseek"].fix == "set DEEPSEEK_API_KEY"
    assert not checks["LLM provider acme"].ok and checks["LLM provider acme"].fix == "set ACME_BASE_URL"

    secret = "sk-doctor-test-secret"
    refused = load_settings({"SCREENING_MODELS": "acme:big", "ACME_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
                             "ACME_API_KEY": secret})
    [check] = check_providers(refused, timeout=1)
    assert not check.ok and "cannot reach" in check.detail
    assert secret not in repr(check.as_dict())

    nothing = check_providers(load_settings({"SCREENING_MODELS": ""}), timeout=1)
    assert not nothing[0].ok and "SCREENING_MODELS is empty" in nothing[0].detail


def test_pooler_settings_must_agree(database_url: str) -> None:
    def pooler(**env: str):
        return check_pooler(load_settings({"DATABASE_URL": database_url, "DATABASE_DIRECT_URL": "",
                                           "DATABASE_POOLER": "none", **env}))

    assert pooler().ok
    missing_direct = pooler(DATABASE_POOLER="pgbouncer-transaction")
    assert not missing_direct.ok and "DATABASE_DIRECT_URL" in missing_direct.fix
    stray_direct = pooler(DATABASE_DIRECT_URL=database_url.replace("127.0.0.1", "localhost"))
    assert not stray_direct.ok and "DATABASE_POOLER=pgbouncer-transaction" in stray_direct.fix
    same = pooler(DATABASE_POOLER="pgbouncer-transaction",
                  DATABASE_DIRECT_URL=database_url.replace("127.0.0.1", "localhost"))
    assert same.ok, same
    other = database_url.rsplit("/", 1)[0] + "/postgres"
    different = pooler(DATABASE_POOLER="pgbouncer-transaction", DATABASE_DIRECT_URL=other)
    assert not different.ok and "different databases" in different.detail


def test_the_connection_arithmetic_follows_the_readme() -> None:
    fleet = Fleet(pongs=["a@h", "b@h", "maintenance@h"],
                  queues={"a@h": ["celery", "maintenance"], "b@h": ["celery", "maintenance"],
                          "maintenance@h": ["maintenance"]},
                  concurrency={"a@h": 2, "b@h": 4, "maintenance@h": 1})
    bound, arithmetic = fleet_connection_bound(fleet, web_concurrency=2)
    # W × (2 + P·C) + 3 (maintenance) + 1 (beat) + 2 (Flower) + P·G, with P = DB_POOL_SIZE = 2
    assert bound == (2 + 2 * 2) + (2 + 2 * 4) + 3 + 1 + 2 + 2 * 2
    assert arithmetic.endswith(f"= {bound}")
    bound, _arithmetic = fleet_connection_bound(fleet, web_concurrency=2, pool_size=3)
    assert bound == (2 + 3 * 2) + (2 + 3 * 4) + 3 + 1 + 2 + 3 * 2


@pytest.mark.process
def test_connections_near_the_limit_fail_with_the_arithmetic(pg_cluster) -> None:
    cluster = pg_cluster(max_connections=20)
    url = cluster.create_database()
    settings = load_settings({"DATABASE_URL": url})
    engine = create_engine(url, poolclass=NullPool)
    target = DatabaseTarget(url, embedded=False)
    fleet = Fleet(pongs=["w@h"], queues={"w@h": ["celery", "maintenance"]}, concurrency={"w@h": 2})
    try:
        assert check_connections(engine, target, fleet, settings).ok
        with cluster.filled(keep_free=2):
            near = check_connections(engine, target, fleet, settings)
        assert not near.ok and near.detail.startswith("near the limit")
        assert "max_connections 20" in near.detail and "raise max_connections" in near.fix
        big_fleet = Fleet(pongs=["w@h"], queues={"w@h": ["celery"]}, concurrency={"w@h": 8})
        over = check_connections(engine, target, big_fleet, settings)
        assert not over.ok and "the fleet can exceed the limit" in over.detail
    finally:
        engine.dispose()


@pytest.mark.parametrize(("server_says", "expected"), [
    ('FATAL:  password authentication failed for user "litscreen"', "password authentication failed at"),
    ('FATAL:  role "nobody" does not exist', "the user in DATABASE_URL does not exist"),
    ("FATAL:  sorry, too many clients already", "max_connections reached"),
    ('FATAL:  database "litscreen" does not exist', "create it with `litscreen db create`"),
    ('relation "users" does not exist', "has no litscreen schema: run `litscreen db upgrade`"),
])
def test_each_database_failure_is_one_line_with_the_url_redacted(server_says: str, expected: str) -> None:
    from app.services.doctor.database import explain

    target = DatabaseTarget("postgresql+psycopg://litscreen:pa55word@db.internal:5432/litscreen", embedded=False)
    line = explain(psycopg.OperationalError(f"connection failed: {server_says}"), target)
    assert line is not None and expected in line
    assert "postgresql+psycopg://litscreen:***@db.internal:5432/litscreen" in line
    assert "pa55word" not in line and "\n" not in line


def test_readyz_lists_the_web_checks(client) -> None:
    body = client.get("/readyz").get_json()
    assert [check["name"] for check in body["checks"]] == ["database", "schema", "broker tables"]
    assert all(check["ok"] for check in body["checks"])
