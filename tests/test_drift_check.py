"""The drift check: a long run re-screens a fixed subset without the cache at its end and reports test–retest
agreement (a real worker and the simulator), and the report's arithmetic on hand-made answers."""

from __future__ import annotations

import pytest

from app.models import ScreeningResult
from app.services.drift import drift_report
from app.services.record_screening import ModelDecision, RecordScreening
from tests.support.engine import (
    add_records,
    configure_app,
    engine_env,
    logs,
    result_count,
    sim,
    simulator_calls,
    start_run,
    wait_final,
)
from tests.support.processes import ProcessGroup, wait_for

RECORDS = 12
SUBSET = 5


def _stored(item_id: int, a: str, b: str) -> ScreeningResult:
    final = a if a == b else "conflict"
    return ScreeningResult(item_id=item_id, literature_id=item_id, llm_decision=final, final_decision=final,
                           decisions=[{"model": "sim:a", "decision": a}, {"model": "sim:b", "decision": b}])


def _retest(a: str, b: str) -> RecordScreening:
    final = a if a == b else "conflict"
    return RecordScreening([ModelDecision("sim:a", a, "r", 0.9), ModelDecision("sim:b", b, "r", 0.9)], final,
                           a != b, a != b, False, None, 0, 0, 0.001)


def test_drift_report_against_hand_computed_agreement() -> None:
    stored = {1: _stored(1, "include", "include"), 2: _stored(2, "exclude", "exclude"),
              3: _stored(3, "exclude", "exclude"), 4: _stored(4, "include", "exclude"),
              5: _stored(5, "exclude", "exclude")}
    retest = [(1, _retest("include", "include")), (2, _retest("exclude", "exclude")),
              (3, _retest("include", "exclude")),  # exclude → conflict (now sent on)
              (4, _retest("include", "exclude")), (5, _retest("exclude", "exclude"))]
    report = drift_report(stored, retest)
    assert report["records"] == 5 and report["decision_agreement"] == pytest.approx(4 / 5)
    assert report["changed"] == [{"literature_id": 3, "before": "exclude", "after": "conflict"}]
    assert report["by_model"] == {"sim:a": {"agreement": pytest.approx(4 / 5), "records": 5},
                                  "sim:b": {"agreement": 1.0, "records": 5}}
    # sent on before/after: tp 2 (1, 4), fp 1 (3), tn 2 (2, 5): po 4/5, pe = 3/5·2/5 + 2/5·3/5 = 12/25
    assert report["kappa"] == pytest.approx((4 / 5 - 12 / 25) / (1 - 12 / 25))


@pytest.mark.process
@pytest.mark.usefixtures("fast_teardown")
def test_a_long_run_ends_with_a_drift_check_that_bypasses_the_cache(app, client, auth, project_id,
                                                                      database_url: str, processes: ProcessGroup,
                                                                      monkeypatch) -> None:
    simulator = sim(processes, latency=0.01)
    drift = {"LLM_CACHE": "on", "DRIFT_CHECK_RECORDS": str(SUBSET), "DRIFT_CHECK_MIN_RECORDS": str(RECORDS)}
    configure_app(app, monkeypatch, simulator, **drift)
    add_records(app, project_id, RECORDS)
    processes.start_worker(database_url, "w1", concurrency=2, **engine_env(simulator, **drift))
    task = start_run(client, auth, project_id, batch_size=6)
    assert client.get(f"/api/v1/asl/tasks/{task['id']}/drift", headers=auth).get_json()["status"] == "pending"

    assert wait_final(database_url, task["id"]) == "completed"
    wait_for(lambda: client.get(f"/api/v1/asl/tasks/{task['id']}/drift", headers=auth).get_json()["status"]
             in ("done", "failed", "skipped"), timeout=60, message="the drift check")
    report = client.get(f"/api/v1/asl/tasks/{task['id']}/drift", headers=auth).get_json()

    assert report["status"] == "done", (report, logs(processes))
    assert report["records"] == SUBSET and report["failed"] == 0
    assert report["decision_agreement"] == 1.0 and report["changed"] == []  # the simulator is deterministic
    assert report["by_model"] == {"sim:model-a": {"agreement": 1.0, "records": SUBSET},
                                  "sim:model-b": {"agreement": 1.0, "records": SUBSET}}
    # the run's calls, then the subset again with every model although every answer was in the cache
    assert simulator_calls(simulator) == 2 * RECORDS + 2 * SUBSET
    assert result_count(database_url, task["id"]) == RECORDS  # the retest writes no result rows
    text = client.get(f"/api/v1/asl/tasks/{task['id']}/methods", headers=auth).get_json()["text"]
    assert f"a fixed subset of {SUBSET} records was screened again" in text


def test_a_short_run_has_no_drift_check(app, client, auth, project_id) -> None:
    from app.extensions import db
    from app.models import Project, ScreeningTask

    with app.app_context():
        session = db.session()
        task = ScreeningTask(project_id=project_id, owner_id=session.get(Project, project_id).owner_id,
                             status="completed", total_items=3, total_batches=1, batch_size=3, model_config={})
        session.add(task)
        session.commit()
        task_id = task.id
    body = client.get(f"/api/v1/asl/tasks/{task_id}/drift", headers=auth).get_json()
    assert body["status"] == "not_applicable" and "DRIFT_CHECK_MIN_RECORDS" in body["reason"]
