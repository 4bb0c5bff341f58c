"""Budgets on real workers: a run pauses before its LLM calls would pass its budget — counted across two worker
processes in PostgreSQL — and a resume continues it from its checkpoints: nothing lost, nothing paid twice."""

from __future__ import annotations

import time

import pytest

from tests.support.broker import wait_ready
from tests.support.engine import (
    add_records,
    configure_app,
    duplicate_results,
    engine_env,
    logs,
    result_count,
    scalar,
    sim,
    simulator_calls,
    start_run,
    task_status,
    wait_final,
)
from tests.support.processes import ProcessGroup, wait_for

PRICES = '{"sim:model-a": {"input": 0.5, "output": 1.5}, "sim:model-b": {"input": 0.4, "output": 1.2}}'
RECORDS = 24


def _spent(database_url: str, task_id: int) -> float:
    return float(scalar(database_url, "SELECT budget_spent_usd FROM screening_tasks WHERE id = %s", task_id))


def _row_costs(database_url: str, task_id: int) -> float:
    return float(scalar(database_url, "SELECT coalesce(sum(cost_estimate), 0) FROM screening_results "
                                      "WHERE task_id = %s", task_id))


def _settled(database_url: str, task_id: int) -> bool:
    """Paused, and no batch is still held (the in-flight items are committed and the leases released)."""
    return task_status(database_url, task_id) == "paused" and scalar(
        database_url, "SELECT count(*) FROM screening_batches WHERE task_id = %s AND status = 'running'",
        task_id) == 0


@pytest.mark.process
@pytest.mark.usefixtures("fast_teardown")
def test_a_budget_pauses_the_run_across_workers_and_a_resume_finishes_it_without_repeats(
        app, client, auth, project_id, database_url: str, processes: ProcessGroup, beat, monkeypatch) -> None:
    simulator = sim(processes, latency=0.05)
    configure_app(app, monkeypatch, simulator, LLM_PRICES=PRICES)
    add_records(app, project_id, RECORDS)
    env = engine_env(simulator, LLM_PRICES=PRICES)
    workers = [processes.start_worker(database_url, name, concurrency=2, **env) for name in ("w1", "w2")]
    for worker in workers:
        wait_ready(worker)
    beat(env)  # the sweeper runs all along: it must leave the paused batches alone
    estimate = client.post(f"/api/v1/asl/projects/{project_id}/screening/estimate", json={},
                           headers=auth).get_json()
    budget = round(estimate["cost_usd"] / 2, 6)

    task = start_run(client, auth, project_id, batch_size=4, budget_usd=budget)
    assert task["budget_usd"] == pytest.approx(budget) and task["paused_reason"] is None

    wait_for(lambda: _settled(database_url, task["id"]), timeout=90, interval=0.2, message="the budget pause")
    time.sleep(3)  # a few sweeps (SWEEP_INTERVAL_SECONDS=1) while paused: nothing may be re-sent or finalized
    body = client.get(f"/api/v1/asl/tasks/{task['id']}", headers=auth).get_json()
    assert body["status"] == "paused" and body["paused_reason"] == "budget", body
    done = result_count(database_url, task["id"])
    assert 0 < done < RECORDS
    spent = _spent(database_url, task["id"])
    assert 0 < spent <= budget
    # every call made is in a committed result (cache off: a repeat or a lost item would show here)
    assert simulator_calls(simulator) == 2 * done
    assert spent == pytest.approx(_row_costs(database_url, task["id"]), abs=1e-5)
    assert float(scalar(database_url, "SELECT budget_reserved_usd FROM screening_tasks WHERE id = %s",
                        task["id"])) == 0
    assert f"re-sending batch {task['id']}/" not in logs(processes)
    # both worker processes screened batches of this run under the one budget
    for worker in workers:
        assert "screen_batch" in worker.log_path.read_text(errors="replace")  # type: ignore[attr-defined]

    too_low = client.post(f"/api/v1/asl/tasks/{task['id']}/resume", json={"budget_usd": spent}, headers=auth)
    assert too_low.status_code == 422 and "budget_usd" in too_low.get_json()["errors"]["json"]
    assert client.post(f"/api/v1/asl/tasks/{task['id']}/resume", json={"budget_usd": 0},
                       headers=auth).status_code == 422
    assert client.post(f"/api/v1/asl/projects/{project_id}/screening", json={},
                       headers=auth).status_code == 409  # a paused run is still the project's active run

    resumed = client.post(f"/api/v1/asl/tasks/{task['id']}/resume", json={"budget_usd": budget * 10},
                          headers=auth)
    assert resumed.status_code == 202, resumed.get_json()
    assert resumed.get_json()["status"] == "running" and resumed.get_json()["paused_reason"] is None

    assert wait_final(database_url, task["id"]) == "completed", logs(processes)
    assert result_count(database_url, task["id"]) == RECORDS
    assert duplicate_results(database_url, task["id"]) == 0
    assert simulator_calls(simulator) == 2 * RECORDS  # nothing paid twice across the pause
    assert _spent(database_url, task["id"]) == pytest.approx(_row_costs(database_url, task["id"]), abs=1e-5)
    again = client.post(f"/api/v1/asl/tasks/{task['id']}/resume", json={"budget_usd": budget * 20}, headers=auth)
    assert again.status_code == 409


@pytest.mark.process
@pytest.mark.usefixtures("fast_teardown")
def test_a_budgeted_extraction_pauses_and_resumes_on_the_dc_paths(app, client, auth, database_url: str,
                                                                    processes: ProcessGroup, monkeypatch) -> None:
    import csv
    import io
    import json

    from app.llm.extraction_prompts import EXTRACTION_PARAMS, build_extraction_messages, record_text
    from app.llm.pricing import upper_cost
    from app.services.kinds.dc_extraction import field_specs
    from tests.test_dc_extraction_run import FIXTURE, MODELS, SCHEMA, start_extraction, upload_fixture

    simulator = sim(processes, latency=0.02)
    configure_app(app, monkeypatch, simulator, LLM_PRICES=PRICES)
    dataset = upload_fixture(client, auth)
    rows = list(csv.DictReader(io.StringIO(FIXTURE.read_text(encoding="utf-8"))))
    specs = field_specs({"schema": SCHEMA})
    reserve = [upper_cost(json.loads(PRICES), list(MODELS),
                          build_extraction_messages(specs, record_text(row, ["note"])),
                          int(EXTRACTION_PARAMS["max_tokens"])) for row in rows]
    budget = round(3 * sum(reserve) / len(reserve), 6)  # a few rows' worth: the run cannot finish within it
    processes.start_worker(database_url, "w1", concurrency=2, **engine_env(simulator, LLM_PRICES=PRICES))

    task = start_extraction(client, auth, dataset["id"], batch_size=10, budget_usd=budget)
    wait_for(lambda: _settled(database_url, task["id"]), timeout=90, interval=0.2, message="the budget pause")
    body = client.get(f"/api/v1/dc/tasks/{task['id']}", headers=auth).get_json()
    assert body["status"] == "paused" and body["paused_reason"] == "budget"
    done = result_count(database_url, task["id"])
    assert 0 < done < 30 and 0 < _spent(database_url, task["id"]) <= budget
    assert simulator_calls(simulator) == 2 * done

    resumed = client.post(f"/api/v1/dc/tasks/{task['id']}/resume", json={"budget_usd": budget * 100}, headers=auth)
    assert resumed.status_code == 202, resumed.get_json()
    assert wait_final(database_url, task["id"]) in ("completed", "completed_with_errors"), logs(processes)
    assert result_count(database_url, task["id"]) == 30
    assert scalar(database_url, "SELECT count(*) - count(DISTINCT item_id) FROM screening_results "
                                "WHERE task_id = %s", task["id"]) == 0
    assert simulator_calls(simulator) == 2 * 30
