"""A whole litscreen stack as real processes (gunicorn web, W workers × C, maintenance worker, beat, Flower) on
one database, driven over HTTP like a user would; and who holds which PostgreSQL connection.

Used by the fleet tests (``tests/test_fleet.py``) and the benchmarks (``bench/bench_connections.py``,
``bench/bench_soak.py``). Every connection a litscreen process opens is named ``litscreen-<role>:<pid>[:purpose]``
(``app/db/connections.py``), so :func:`connections_by_process` maps ``pg_stat_activity`` to process types.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from tests.support.database import conninfo
from tests.support.engine import FINAL, IRRELEVANT, MODELS, RELEVANT
from tests.support.pgcluster import free_port
from tests.support.processes import ProcessGroup, subprocess_env, wait_for

TOO_MANY = "too many clients"
PICOS = {"P": "healthcare professionals", "I": "nudges, defaults, reminders", "C": "usual care",
         "O": "guideline adherence", "S": "randomised trials"}


def fleet_env(sim_url: str, **extra: Any) -> dict[str, str]:
    """Environment of every stack process: the simulator's two models, LLM cache off, short recovery clocks."""
    env = {
        "SCREENING_MODELS": MODELS, "SIM_BASE_URL": sim_url, "LLM_CACHE": "off", "SIM_MAX_CONCURRENCY": "4",
        "LEASE_TTL_SECONDS": "5", "SWEEP_INTERVAL_SECONDS": "2", "DISPATCH_GRACE_SECONDS": "5",
        "CHECKPOINT_EVERY": "10", "CHECKPOINT_SECONDS": "1", "SCREENING_RETRY_BACKOFF_SECONDS": "1",
        "LLM_MAX_ATTEMPTS": "4", "LLM_RETRY_INITIAL_SECONDS": "0.1", "LLM_RETRY_MAX_SECONDS": "0.5",
        "WORKER_LOST_WAIT_SECONDS": "1", "CACHE_CLEANUP_INTERVAL_SECONDS": "5",
        "BROKER_CLEANUP_INTERVAL_SECONDS": "5", "LOG_LEVEL": "INFO",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


@dataclass
class Fleet:
    """A running stack: its processes (by name), its web API and the database URL its processes use."""

    processes: ProcessGroup
    database_url: str
    env: dict[str, str]
    web_url: str = ""
    token: str = ""
    started: dict[str, subprocess.Popen] = field(default_factory=dict)

    # -- processes ----------------------------------------------------------------------------------------------

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        process = self.processes.start(args, subprocess_env(self.database_url, **self.env), name)
        self.started[name] = process
        return process

    def start_worker(self, name: str, concurrency: int, queues: str | None = None) -> subprocess.Popen:
        """``celery -A tasks worker`` as the Procfile runs it."""
        args = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
                "--hostname", f"{name}@%h", "--concurrency", str(concurrency), "--prefetch-multiplier", "1"]
        if queues:
            args += ["--queues", queues]
        return self._start(name, args)

    def start_web(self, workers: int = 2) -> None:
        """gunicorn with ``workers`` processes, as the Procfile runs it; waits until it answers."""
        port = free_port()
        self._start("web", [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers",
                            str(workers), "app:create_app()"])
        self.web_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: self._answers(f"{self.web_url}/healthz"), 90, interval=0.3, message="gunicorn to answer")

    def start_flower(self) -> None:
        port = free_port()
        self._start("flower", [sys.executable, "-m", "celery", "-A", "tasks", "flower", "--address=127.0.0.1",
                               f"--port={port}"])
        wait_for(lambda: self._answers(f"http://127.0.0.1:{port}/healthcheck"), 90, interval=0.3,
                 message="flower to answer")

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def workers(self) -> list[subprocess.Popen]:
        """The screening workers' main processes (not the maintenance worker)."""
        return [p for name, p in self.started.items() if name.startswith("worker")]

    def exited(self) -> dict[str, int]:
        """Started processes that have exited (name -> return code), those killed on purpose included."""
        return {name: p.returncode for name, p in self.started.items() if p.poll() is not None}

    def logs(self) -> str:
        """Every process log of this stack."""
        return "\n".join(p.log_path.read_text(errors="replace") for p in self.started.values())  # type: ignore[attr-defined]

    # -- the HTTP API, as a user drives it ------------------------------------------------------------------------

    def login(self, name: str = "fleet") -> None:
        """Create a user and an API token with the CLI (``litscreen users create`` / ``tokens create``)."""
        env = subprocess_env(self.database_url, **self.env)
        subprocess.run([sys.executable, "-m", "app.cli", "users", "create", name], env=env, check=True,
                       capture_output=True, timeout=120)
        created = subprocess.run([sys.executable, "-m", "app.cli", "tokens", "create", name], env=env, check=True,
                                 capture_output=True, text=True, timeout=120)
        self.token = created.stdout.strip().splitlines()[-1]

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request to the web API, retried while the stack answers 5xx (a full or restarting server)."""
        deadline = time.monotonic() + 120
        while True:
            try:
                response = httpx.request(method, f"{self.web_url}/api/v1/asl{path}", timeout=60,
                                         headers={"Authorization": f"Bearer {self.token}"}, **kwargs)
                if response.status_code < 500 or time.monotonic() > deadline:
                    return response
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def create_project(self, records: int, chunk: int = 500) -> int:
        """A project with ``records`` records (every third one on topic), imported as JSON."""
        response = self.api("POST", "/projects", json={"name": "Fleet", "picos": PICOS})
        assert response.status_code == 201, response.text
        project_id = int(response.json()["id"])
        for start in range(0, records, chunk):
            body = [{"title": f"Record {i}: {(RELEVANT if i % 3 == 0 else IRRELEVANT)[:60]}",
                     "abstract": f"{RELEVANT if i % 3 == 0 else IRRELEVANT} (study {i})", "year": 2000 + i % 20,
                     "doi": f"10.1000/fleet.{i}", "authors": [f"Author {i}"], "journal": "Journal of Tests"}
                    for i in range(start, min(records, start + chunk))]
            imported = self.api("POST", f"/projects/{project_id}/literatures", json={"records": body})
            assert imported.status_code in (200, 201), imported.text
        return project_id

    def start_screening(self, project_id: int, batch_size: int) -> int:
        response = self.api("POST", f"/projects/{project_id}/screening", json={"batch_size": batch_size})
        assert response.status_code == 202, response.text
        return int(response.json()["id"])


def start_fleet(processes: ProcessGroup, database_url: str, env: dict[str, str], workers: int = 4,
                concurrency: int = 2, web_workers: int = 2, flower: bool = True) -> Fleet:
    """The ``make up`` stack with ``workers`` screening workers at ``concurrency``, logged in and answering."""
    fleet = Fleet(processes, database_url, env)
    fleet.start_web(web_workers)
    for index in range(workers):
        fleet.start_worker(f"worker{index}", concurrency)
    fleet.start_worker("maintenance", 1, queues="maintenance")
    fleet._start("beat", [sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "INFO",
                          "-s", str(processes.log_dir / "celerybeat-schedule")])
    if flower:
        fleet.start_flower()
    fleet.login()
    return fleet


# -- reading the database (fresh connections; a refused connection is "not yet") ---------------------------------

def rows(url: str, sql: str, *params: Any) -> list[tuple] | None:
    """Rows of ``sql``, or None while the server refuses connections (full or restarting)."""
    try:
        with psycopg.connect(conninfo(url), autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()
    except psycopg.OperationalError:
        return None


def task_status(url: str, task_id: int) -> str | None:
    found = rows(url, "SELECT status FROM screening_tasks WHERE id = %s", task_id)
    return found[0][0] if found else None


def wait_final(url: str, task_id: int, timeout: float) -> str:
    """Wait until the task reaches a final status; return it."""
    return str(wait_for(lambda: (status := task_status(url, task_id)) in FINAL and status, timeout, interval=0.5,
                        message=f"task {task_id} to finish"))


def result_counts(url: str, task_id: int) -> tuple[int, int]:
    """(results, distinct records with a result) of the task."""
    found = rows(url, "SELECT count(*), count(DISTINCT literature_id) FROM screening_results WHERE task_id = %s",
                 task_id)
    assert found is not None
    return int(found[0][0]), int(found[0][1])


def results_so_far(url: str, task_id: int) -> int:
    found = rows(url, "SELECT count(*) FROM screening_results WHERE task_id = %s", task_id)
    return int(found[0][0]) if found else 0


# -- who holds which connection --------------------------------------------------------------------------------

def process_type(role: str) -> str:
    """The process type a connection role belongs to (a maintenance worker's child counts as maintenance)."""
    return "maintenance" if role.startswith("maintenance") else role


def connections_by_process(admin_url: str, database: str | None = None) -> dict[tuple[str, int], int]:
    """Client connections to PostgreSQL right now, counted per (role, pid) from their ``application_name``;
    connections that are not litscreen's (or carry no name) count under ("other", 0)."""
    sql = ("SELECT application_name FROM pg_stat_activity WHERE backend_type = 'client backend' "
           "AND pid <> pg_backend_pid()" + (" AND datname = %s" if database else ""))
    found = rows(admin_url, sql, *((database,) if database else ())) or []
    counts: Counter[tuple[str, int]] = Counter()
    for (name,) in found:
        counts[parse_application_name(name or "")] += 1
    return dict(counts)


def parse_application_name(name: str) -> tuple[str, int]:
    """``litscreen-pool-child:123:broker`` -> ("pool-child", 123); anything else -> ("other", 0)."""
    if not name.startswith("litscreen-"):
        return "other", 0
    parts = name[len("litscreen-"):].split(":")
    try:
        return parts[0], int(parts[1])
    except (IndexError, ValueError):
        return parts[0], 0


def per_type(counts: dict[tuple[str, int], int]) -> dict[str, dict[str, int]]:
    """Per process type: processes seen, total connections, and the most any one process holds."""
    table: dict[str, dict[str, int]] = defaultdict(lambda: {"processes": 0, "connections": 0, "max_per_process": 0})
    by_process: dict[tuple[str, int], int] = defaultdict(int)
    for (role, pid), count in counts.items():
        by_process[(process_type(role), pid)] += count
    for (kind, _pid), count in by_process.items():
        row = table[kind]
        row["processes"] += 1
        row["connections"] += count
        row["max_per_process"] = max(row["max_per_process"], count)
    return dict(table)


class ConnectionSampler:
    """Samples ``connections_by_process`` and keeps, per process type, the peak per process and in total."""

    def __init__(self, admin_url: str, database: str | None = None) -> None:
        self.admin_url, self.database = admin_url, database
        self.peak_total = 0
        self.peak: dict[str, dict[str, int]] = {}

    def sample(self) -> dict[str, dict[str, int]]:
        table = per_type(connections_by_process(self.admin_url, self.database))
        self.peak_total = max(self.peak_total, sum(row["connections"] for row in table.values()))
        for kind, row in table.items():
            peak = self.peak.setdefault(kind, {"processes": 0, "connections": 0, "max_per_process": 0})
            for key, value in row.items():
                peak[key] = max(peak[key], value)
        return table


# Issue 9's per-process targets (idle and while screening): the most connections one process of the type holds;
# the maintenance worker's target counts its main process and its pool child together. The design guarantees them
# at every instant (README "Connection budget"): a pool child or web worker holds only its application pool
# (DB_POOL_SIZE = 2; its broker statements borrow from it), the maintenance worker's child a pool of 1.
TARGETS = {"pool-child": 2, "worker": 2, "maintenance": 3, "beat": 1, "flower": 2, "web": 2}


def over_target(peak: dict[str, dict[str, int]], bounds: dict[str, int] = TARGETS) -> dict[str, int]:
    """Process types whose peak is over its bound (type -> peak); ``bounds``: issue 9's targets by default."""
    over = {}
    for kind, limit in bounds.items():
        row = peak.get(kind)
        if row is None:
            continue
        value = row["connections"] if kind == "maintenance" else row["max_per_process"]
        if value > limit:
            over[kind] = value
    return over
