"""The broker's share of the connection budget, measured on real processes through ``pg_stat_activity``.

Each server connection is mapped to the process that holds it (its client port among the process's sockets).
With a worker at ``--concurrency 2`` that has run tasks, beat, and Flower polling its API: a worker main process
holds at most 2 (the shared broker connection and the LISTEN one), no pool child holds a broker connection of
its own for the work it ran, beat holds at most 1 and Flower at most 2, however many kombu connections each
made (Flower's inspect calls, Celery's event dispatcher, the producer pool).
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import psutil
import pytest

from app import task_names
from app.processes import free_port
from tests.support.broker import BROKER_ENV, executions, query, start_workers
from tests.support.processes import ProcessGroup, subprocess_env, wait_for
from tests.test_flower import AUTH

pytestmark = pytest.mark.slow


def connections_of(database_url: str, process: subprocess.Popen | psutil.Process) -> list[str]:
    """What each server connection held by ``process`` itself (not its children) is for: the purpose its
    ``application_name`` (``litscreen-<role>:<pid>:<purpose>``) ends with — ``broker``, ``listen`` or ``app``."""
    ports = {c.laddr.port for c in psutil.Process(process.pid).net_connections(kind="tcp") if c.raddr}
    rows = query(database_url, "SELECT client_port, application_name FROM pg_stat_activity "
                               "WHERE backend_type = 'client backend' AND client_port IS NOT NULL")
    return sorted((name or "").rsplit(":", 1)[-1] for port, name in rows if port in ports)


def test_broker_connections_per_process_stay_within_the_budget(
        app, database_url: str, processes: ProcessGroup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (worker,) = start_workers(processes, database_url, ["budget"], concurrency=2)
    env = subprocess_env(database_url, **BROKER_ENV, FLOWER_BASIC_AUTH=f"{AUTH[0]}:{AUTH[1]}")
    port = free_port()
    flower = processes.start([sys.executable, "-m", "celery", "-A", "tasks", "flower", "--address=127.0.0.1",
                              f"--port={port}"], env, "flower")
    beat = processes.start([sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "INFO",
                            "--schedule", str(tmp_path / "beat-schedule")],
                           subprocess_env(database_url, **BROKER_ENV, BROKER_CLEANUP_INTERVAL_SECONDS="1"), "beat")

    def workers_listed() -> bool:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/api/workers", params={"refresh": 1}, auth=AUTH,
                                 timeout=30)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and any(name.startswith("budget@") for name in response.json())

    wait_for(workers_listed, 90, interval=1, message="flower lists the worker")
    for _ in range(3):  # Flower's inspect/broadcast calls: each one a kombu connection from its pool
        assert workers_listed()
    celery = app.extensions["celery"]
    for i in range(6):
        celery.send_task(task_names.DIAG_RECORD_EXECUTION, args=[f"budget-{i}", 0.2], ignore_result=True)
    wait_for(lambda: len(executions(database_url, "finish", "budget-")) == 6, 60, message="tasks ran")
    wait_for(lambda: "broker" in connections_of(database_url, beat), 60, message="beat published")

    main = connections_of(database_url, worker)
    assert len(main) <= 2 and main.count("broker") == 1 and main.count("listen") == 1, main
    for child in psutil.Process(worker.pid).children():
        held = connections_of(database_url, child)
        assert "listen" not in held and "broker" not in held, held  # its broker statements borrow app connections
    assert connections_of(database_url, beat) == ["broker"]
    held = connections_of(database_url, flower)
    assert len(held) <= 2 and held.count("broker") == 1, held
