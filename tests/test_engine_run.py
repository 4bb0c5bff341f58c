"""A screening run end to end on real workers: every record screened once, counters from rows, chord finalizes."""

from __future__ import annotations

import pytest

from tests.support.engine import (
    add_records,
    configure_app,
    duplicate_results,
    engine_env,
    query,
    result_count,
    scalar,
    sim,
    simulator_calls,
    start_run,
    wait_final,
)
from tests.support.processes import ProcessGroup


@pytest.mark.usefixtures("fast_teardown")
def test_a_run_screens_every_record_once(app, client, auth, project_id, database_url: str,
                                         processes: ProcessGroup, monkeypatch) -> None:
    simulator = sim(processes, latency=0.02)
    configure_app(app, monkeypatch, simulator)
    add_records(app, project_id, 45)
    processes.start_worker(database_url, "w1", concurrency=2, **engine_env(simulator))
    task = start_run(client, auth, project_id, batch_size=10)
    assert task["status"] == "pending" and task["total_items"] == 45 and task["total_batches"] == 5

    status = wait_final(database_url, task["id"])

    assert status == "completed"
    assert result_count(database_url, task["id"]) == 45
    assert duplicate_results(database_url, task["id"]) == 0
    assert simulator_calls(simulator) == 90  # two models, each record once
    # counters kept in the checkpoint transactions equal a recount from rows
    counters = query(database_url, "SELECT processed_items, success_items, failed_items, conflict_items, "
                                   "prompt_tokens FROM screening_tasks WHERE id = %s", task["id"])[0]
    recount = query(database_url, "SELECT count(*), count(*) FILTER (WHERE status = 'success'), "
                                  "count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE has_conflict), "
                                  "sum(prompt_tokens) FROM screening_results WHERE task_id = %s", task["id"])[0]
    assert counters == recount
    assert scalar(database_url, "SELECT count(*) FROM screening_batches WHERE task_id = %s AND status = 'done' "
                                "AND cursor = size", task["id"]) == 5
    decisions = {row[0] for row in query(database_url, "SELECT final_decision FROM screening_results "
                                                       "WHERE task_id = %s", task["id"])}
    assert "include" in decisions and "exclude" in decisions

    body = client.get(f"/api/v1/asl/tasks/{task['id']}", headers=auth).get_json()
    assert body["progress"] == 1.0 and body["processed_batches"] == 5 and body["processed_items"] == 45
