"""Extractions on real workers with the LLM simulator: a full run, per-field review, accuracy against gold
columns, export (CSV and XLSX), and a worker ``kill -9`` mid-batch with no record paid twice."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import psutil
import pytest
from openpyxl import load_workbook

from tests.support.engine import (
    configure_app,
    engine_env,
    logs,
    query,
    scalar,
    sim,
    simulator_calls,
    wait_final,
)
from tests.support.processes import ProcessGroup, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fast_teardown")]

FIXTURE = Path(__file__).parent / "fixtures" / "clinical" / "aci_bench_30.csv"
SCHEMA = {"fields": [
    {"name": "age", "type": "integer", "description": "Patient age in years", "required": True},
    {"name": "sex", "type": "enum", "enum": ["male", "female"], "description": "Patient sex", "required": True},
    {"name": "chief_complaint", "type": "string", "description": "Chief complaint", "required": True},
    {"name": "secondary_complaints", "type": "list", "description": "Conditions in the past medical history"},
    {"name": "xray", "type": "boolean", "description": "An X-ray was done, reviewed or ordered"},
    {"name": "ejection_fraction", "type": "number", "description": "Left ventricular ejection fraction",
     "unit": "percent"},
]}
GOLD = {"age": "gold_age", "sex": "gold_gender", "chief_complaint": "gold_chief_complaint",
        "secondary_complaints": "gold_secondary_complaints", "xray": "gold_xray",
        "ejection_fraction": "gold_ejection_fraction"}
MODELS = ("sim:model-a", "sim:model-b")


def upload_fixture(client, auth) -> dict:
    response = client.post("/api/v1/dc/datasets", headers=auth, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(FIXTURE.read_bytes()), "aci.csv")})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def start_extraction(client, auth, dataset_id: int, **body) -> dict:
    payload = {"id_column": "encounter_id", "text_columns": ["note"], "schema": SCHEMA, "gold_columns": GOLD,
               **body}
    response = client.post(f"/api/v1/dc/datasets/{dataset_id}/extractions", json=payload, headers=auth)
    assert response.status_code == 202, response.get_json()
    task = response.get_json()
    assert task["task_type"] == "dc_extraction" and task["total_items"] == 30
    return task


def all_results(client, auth, task_id: int, **filters) -> list[dict]:
    response = client.get(f"/api/v1/dc/tasks/{task_id}/results", headers=auth,
                          query_string={"page_size": 500, **filters})
    assert response.status_code == 200
    return response.get_json()


def test_a_run_then_review_accuracy_and_export(app, client, auth, database_url, processes: ProcessGroup,
                                               monkeypatch) -> None:
    simulator = sim(processes, latency=0.01)
    configure_app(app, monkeypatch, simulator)
    dataset = upload_fixture(client, auth)
    processes.start_worker(database_url, "w1", concurrency=2, **engine_env(simulator))
    task = start_extraction(client, auth, dataset["id"], batch_size=10)
    assert task["total_batches"] == 3

    assert wait_final(database_url, task["id"]) == "completed"
    assert simulator_calls(simulator) == 60  # two models, every record once (cache off)
    # privacy: no record text in any process log (worker at INFO, simulator)
    assert "Martha Collins" not in logs(processes) and "systolic ejection murmur" not in logs(processes)
    view = client.get(f"/api/v1/dc/tasks/{task['id']}", headers=auth).get_json()
    assert view["processed_items"] == 30 and view["progress"] == 1.0
    assert len(client.get(f"/api/v1/dc/tasks/{task['id']}/batches", headers=auth).get_json()) == 3
    results = all_results(client, auth, task["id"])
    assert len(results) == 30 and all(r["status"] == "success" for r in results)
    by_decision = {d: len(all_results(client, auth, task["id"], decision=d)) for d in ("agreed", "conflict",
                                                                                      "review")}
    assert sum(by_decision.values()) == 30 and by_decision["agreed"] > 0 and by_decision["conflict"] > 0
    first = next(r for r in results if r["item_id"] == min(x["item_id"] for x in results))  # D2N001
    age = first["fields"]["age"]
    assert set(age["by_model"]) == set(MODELS)
    assert age["agreed"] and age["value"] == 50 and age["verified"] is True
    assert age["evidence"] == "50-year-old"
    # somewhere the simulated models disagree or cannot back a required value: those fields wait for a human
    flagged = all_results(client, auth, task["id"], review="required")
    assert flagged and all(r["manual_review_required"] for r in flagged)
    target = flagged[0]
    name = next(n for n, f in target["fields"].items() if f["review_required"])
    pending = [n for n, f in target["fields"].items() if f["review_required"]]

    # per-field review: a bad value is a 422 naming the field, a good one is stored next to the machine's
    bad = client.patch(f"/api/v1/dc/results/{target['id']}", headers=auth,
                       json={"fields": {"age": {"value": "forty"}}})
    assert bad.status_code == 422 and "fields.age" in bad.get_json()["errors"]
    unknown = client.patch(f"/api/v1/dc/results/{target['id']}", headers=auth,
                           json={"fields": {"weight": {"value": 1}}})
    assert unknown.status_code == 422
    human_value = {"age": 77, "sex": "female", "chief_complaint": "checked by hand", "xray": True,
                   "secondary_complaints": ["a", "b"], "ejection_fraction": 50}
    reviewed = client.patch(f"/api/v1/dc/results/{target['id']}", headers=auth,
                            json={"fields": {n: {"value": human_value[n], "note": "read the note"}
                                             for n in pending}})
    assert reviewed.status_code == 200, reviewed.get_json()
    body = reviewed.get_json()
    assert body["manual_review_required"] is False and body["final_decision"] == "reviewed"
    assert body["fields"][name]["review"]["value"] == human_value[name]
    assert body["fields"][name]["by_model"] == target["fields"][name]["by_model"]  # machine's values kept
    assert target["id"] not in {r["id"] for r in all_results(client, auth, task["id"], review="required")}

    # accuracy against the gold columns: per model, agreed and final
    accuracy = client.get(f"/api/v1/dc/tasks/{task['id']}/accuracy", headers=auth).get_json()
    assert accuracy["records"] == 30
    sex = accuracy["fields"]["sex"]
    assert sex["by_model"]["sim:model-a"]["n"] == 30 and sex["by_model"]["sim:model-a"]["exact_match"] >= 0.9
    secondary = accuracy["fields"]["secondary_complaints"]
    assert 0 < secondary["agreed"]["precision"] <= 1 and 0 < secondary["agreed"]["recall"] < 1
    assert accuracy["fields"]["ejection_fraction"]["by_model"]["sim:model-a"]["exact_match"] > 0.5
    for field in accuracy["fields"].values():
        assert field["agreed"]["coverage"] <= max(m["coverage"] for m in field["by_model"].values())

    # export: original columns, then the fields (the human's value where reviewed), per model, evidence, flags
    exported = client.get(f"/api/v1/dc/tasks/{task['id']}/export?format=csv", headers=auth)
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert len(rows) == 30
    header = list(rows[0])
    assert header[:8] == dataset["columns"]
    assert header[8:13] == ["age", "age [sim:model-a]", "age [sim:model-b]", "age evidence", "age flags"]
    assert rows[0]["note"] == FIXTURE_NOTES()[0] and rows[0]["age"] == "50"
    reviewed_row = next(r for r in rows if "human_reviewed" in r[f"{name} flags"])
    exported_value = {"age": "77", "sex": "female", "chief_complaint": "checked by hand", "xray": "true",
                      "secondary_complaints": "a; b", "ejection_fraction": "50.0"}
    assert reviewed_row[name] == exported_value[name]
    workbook = client.get(f"/api/v1/dc/tasks/{task['id']}/export?format=xlsx", headers=auth)
    assert workbook.status_code == 200
    sheet = load_workbook(io.BytesIO(workbook.get_data()), read_only=True).active
    cells = list(sheet.iter_rows(values_only=True))
    assert list(cells[0]) == header and len(cells) == 31
    assert cells[1][0] == "D2N001"

    # deleting the dataset deletes the extraction, its results and its cached answers
    assert client.delete(f"/api/v1/dc/datasets/{dataset['id']}", headers=auth).status_code == 204
    assert scalar(database_url, "SELECT count(*) FROM screening_tasks WHERE id = %s", task["id"]) == 0
    assert scalar(database_url, "SELECT count(*) FROM screening_results WHERE task_id = %s", task["id"]) == 0
    assert client.get(f"/api/v1/dc/tasks/{task['id']}", headers=auth).status_code == 404


def FIXTURE_NOTES() -> list[str]:
    return [r["note"] for r in csv.DictReader(FIXTURE.open(encoding="utf-8"))]


def test_kill9_mid_batch_resumes_and_pays_no_record_twice(app, client, auth, database_url,
                                                         processes: ProcessGroup, monkeypatch, beat) -> None:
    simulator = sim(processes, latency=0.15)
    # the cache is off (every call reaches the simulator) and every record is checkpointed on its own
    env = engine_env(simulator, SIM_MAX_CONCURRENCY=1, CHECKPOINT_EVERY=1)
    configure_app(app, monkeypatch, simulator, SIM_MAX_CONCURRENCY=1, CHECKPOINT_EVERY=1)
    dataset = upload_fixture(client, auth)
    workers = [processes.start_worker(database_url, "wa", concurrency=1, **env),
               processes.start_worker(database_url, "wb", concurrency=1, **env)]
    beat(env)
    task = start_extraction(client, auth, dataset["id"], batch_size=15)

    def running() -> int | None:
        rows = query(database_url, "SELECT lease_owner FROM screening_batches WHERE task_id = %s AND "
                                   "status = 'running' AND cursor >= 3 AND cursor < size", task["id"])
        return int(rows[0][0].split(":")[1]) if rows else None

    pid = wait_for(running, timeout=60, message="a batch past its third record")
    victim = next(w for w in workers
                  if pid in {w.pid} | {c.pid for c in psutil.Process(w.pid).children(recursive=True)})
    ProcessGroup.kill_tree(victim)  # kill -9 of the worker and its pool child
    victim.wait(timeout=10)

    assert wait_final(database_url, task["id"], timeout=120) == "completed"
    assert scalar(database_url, "SELECT count(*) FROM screening_results WHERE task_id = %s", task["id"]) == 30
    assert scalar(database_url, "SELECT count(*) - count(DISTINCT item_id) FROM screening_results "
                                "WHERE task_id = %s", task["id"]) == 0
    # every record's two calls once; the only repeat allowed is the one record in flight when the worker died
    # (its answer never arrived, so it was never recorded)
    assert 60 <= simulator_calls(simulator) <= 62
    assert scalar(database_url, "SELECT max(attempts) FROM screening_batches WHERE task_id = %s", task["id"]) >= 2
