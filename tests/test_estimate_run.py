"""The cost estimate against a real run: real workers screen real records on the simulator, and the measured cost
(summed from the result rows) is within 15 % of what ``…/screening/estimate`` said before the run."""

from __future__ import annotations

import pytest

from app.demo.dataset import INCLUSION_CRITERIA, PICOS, demo_subset, load_dataset
from tests.support.engine import (
    configure_app,
    engine_env,
    scalar,
    sim,
    start_run,
    wait_final,
)
from tests.support.processes import ProcessGroup

PRICES = '{"sim:model-a": {"input": 0.5, "output": 1.5}, "sim:model-b": {"input": 0.4, "output": 1.2}}'


@pytest.mark.slow
@pytest.mark.usefixtures("fast_teardown")
def test_estimate_is_within_15_percent_of_the_measured_cost(app, client, auth, database_url: str,
                                                             processes: ProcessGroup, monkeypatch) -> None:
    simulator = sim(processes, latency=0.0)
    configure_app(app, monkeypatch, simulator, LLM_PRICES=PRICES)
    project = client.post("/api/v1/asl/projects", json={"name": "estimate", "picos": PICOS,
                                                        "inclusion_criteria": INCLUSION_CRITERIA},
                          headers=auth).get_json()
    records = [r.as_import_record() for r in demo_subset(load_dataset(), 80)]
    assert client.post(f"/api/v1/asl/projects/{project['id']}/literatures", json={"records": records},
                       headers=auth).status_code == 201

    estimate = client.post(f"/api/v1/asl/projects/{project['id']}/screening/estimate", json={},
                           headers=auth).get_json()
    assert estimate["calls"] == 160 and estimate["cost_usd"] > 0

    processes.start_worker(database_url, "w1", concurrency=2, **engine_env(simulator, LLM_PRICES=PRICES))
    task = start_run(client, auth, project["id"])
    assert wait_final(database_url, task["id"]) == "completed"

    measured = float(scalar(database_url, "SELECT sum(cost_estimate) FROM screening_results WHERE task_id = %s",
                            task["id"]))
    assert measured > 0
    assert abs(estimate["cost_usd"] - measured) / measured <= 0.15, (estimate, measured)
    measured_prompt = scalar(database_url, "SELECT sum(prompt_tokens) FROM screening_results WHERE task_id = %s",
                             task["id"])
    assert abs(estimate["prompt_tokens"] - measured_prompt) / measured_prompt <= 0.15
