"""Connections scale with processes, not threads: a pool child's screening threads (8 per child here, plus the
screener's call threads) share the process's small pool — LLM calls hold no connection — and its broker
statements (the chord's ``chord_unlock`` retries, the finalize's drift check) borrow from that same pool, so a pool
child holds at most ``DB_POOL_SIZE`` = 2 connections of any kind, idle and under load, and never one named
``:broker`` (read from ``pg_stat_activity`` during a real run). Celery's result writes go through the same pool
(``tasks/results.py``)."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.connections import all_connections_by_pid, app_connections_by_pid, worker_tree
from tests.support.engine import (
    FINAL,
    add_records,
    configure_app,
    duplicate_results,
    engine_env,
    query,
    result_count,
    sim,
    start_run,
    task_status,
)
from tests.support.processes import ProcessGroup, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fast_teardown")]


def test_pool_children_hold_at_most_two_application_connections(app, client, auth, project_id, database_url: str,
                                                                processes: ProcessGroup, monkeypatch) -> None:
    simulator = sim(processes, latency=0.05)
    env = engine_env(simulator, SIM_MAX_CONCURRENCY=8, LLM_CACHE="on", CHECKPOINT_SECONDS=0.5)
    configure_app(app, monkeypatch, simulator, SIM_MAX_CONCURRENCY=8, LLM_CACHE="on")
    add_records(app, project_id, 240)
    worker = processes.start_worker(database_url, "w1", concurrency=2, **env)
    wait_for(lambda: len(worker_tree(worker.pid)[1]) == 2, timeout=60, message="two pool children")
    main, children = worker_tree(worker.pid)
    wait_for(lambda: all_connections_by_pid(database_url, [main]), timeout=60, message="the worker consuming")
    idle = app_connections_by_pid(database_url)
    idle_all = all_connections_by_pid(database_url, [main, *children])

    task = start_run(client, auth, project_id, batch_size=30)
    peak_app: Counter[int] = Counter()
    peak_all: Counter[int] = Counter()
    broker_names: set[str] = set()

    def sample() -> bool:
        broker_names.update(name for (name,) in query(
            database_url, "SELECT application_name FROM pg_stat_activity WHERE datname = current_database() "
                          "AND application_name LIKE 'litscreen-pool-child:%%:broker'"))
        for pid, count in app_connections_by_pid(database_url).items():
            peak_app[pid] = max(peak_app[pid], count)
        for pid, count in all_connections_by_pid(database_url, [main, *children]).items():
            peak_all[pid] = max(peak_all[pid], count)
        return task_status(database_url, task["id"]) in FINAL

    wait_for(sample, timeout=180, interval=0.05, message="the run to finish")

    assert task_status(database_url, task["id"]) == "completed"
    assert result_count(database_url, task["id"]) == 240 and duplicate_results(database_url, task["id"]) == 0
    print(f"\nconnections idle (app engine) {dict(idle)}, idle (all clients) {dict(idle_all)}; "
          f"peak app engine {dict(peak_app)}; "
          f"peak all clients {dict(peak_all)}; main {main}, pool children {children}")
    assert all(idle[pid] <= 2 for pid in children)
    assert any(peak_app[pid] >= 1 for pid in children)  # the sampling saw the children at work
    assert all(peak_app[pid] <= 2 for pid in children), dict(peak_app)
    assert all(peak_all[pid] <= 2 for pid in children), dict(peak_all)  # broker and result writes included
    assert not broker_names, broker_names
