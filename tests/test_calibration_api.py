"""Calibration before the full run: the report against hand-computed counts, the sample it screens, the locked
configuration, and a full run that records the calibration it follows and how it differs (in the methods text).

Result rows are written directly; no worker runs here (a started run's messages stay in the broker table)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from app.extensions import db
from app.models import Literature, Project, ScreeningResult, ScreeningTask
from app.services.calibration import classify_judgement
from app.services.methods import prompt_hash

ALL_MATCH = {e: "match" for e in "PICOS"}
LOCKED = {"models": ["sim:model-a", "sim:model-b"], "prompt_version": "asl-ta-test", "decision_rule": "unanimous"}


def model_decisions(a: str, b: str, picos_a: dict, picos_b: dict) -> list[dict]:
    return [{"model": "sim:model-a", "decision": a, "reason": f"a says {a}", "confidence": 0.9, "picos": picos_a},
            {"model": "sim:model-b", "decision": b, "reason": f"b says {b}", "confidence": 0.8, "picos": picos_b}]


def seed_calibration(app, project_id: int, rows: list[tuple[str, str, str, dict, dict]]) -> int:
    """A finished calibration task: one result per (label, decision a, decision b, picos a, picos b)."""
    with app.app_context():
        session = db.session()
        records = [Literature(project_id=project_id, title=f"Record {i}", abstract="About nudges.", authors=[],
                              keywords=[], source_format="ris", label=row[0], dedup_key=f"k{i}")
                   for i, row in enumerate(rows)]
        session.add_all(records)
        owner_id = session.get(Project, project_id).owner_id
        task = ScreeningTask(project_id=project_id, owner_id=owner_id, status="completed", total_items=len(rows),
                             total_batches=1, batch_size=len(rows), model_config={}, processed_items=len(rows),
                             success_items=len(rows), is_calibration=True, locked_config=LOCKED)
        session.add(task)
        session.flush()
        for record, (_label, a, b, picos_a, picos_b) in zip(records, rows, strict=True):
            final = a if a == b else "conflict"
            session.add(ScreeningResult(task_id=task.id, item_id=record.id, literature_id=record.id, batch_index=0,
                                        decisions=model_decisions(a, b, picos_a, picos_b), final_decision=final,
                                        llm_decision=final, has_conflict=a != b, manual_review_required=a != b,
                                        status="success"))
        session.commit()
        return task.id


def test_classify_judgement_reads_the_models_words() -> None:
    assert classify_judgement("match") == "met"
    assert classify_judgement("no match") == "not_met"
    assert classify_judgement("partial") == "partly"
    assert classify_judgement("not assessed") == "not_assessed"
    assert classify_judgement("Does not describe a nudge") == "not_met"
    assert classify_judgement("Population matches: physicians") == "met"
    assert classify_judgement("") == "not_assessed"


def test_calibration_report_against_hand_computed_counts(app, client, auth, project_id) -> None:
    missed_a = {"P": "match", "I": "no match", "C": "not assessed", "O": "partial", "S": "no match"}
    missed_b = {"P": "match", "I": "Does not describe a nudge", "C": "not assessed", "O": "partial", "S": "match"}
    false_inc = {"P": "match", "I": "no match", "C": "no match", "O": "no match", "S": "no match"}
    rows = ([("include", "include", "include", ALL_MATCH, ALL_MATCH)] * 4
            + [("include", "exclude", "exclude", missed_a, missed_b)] * 3
            + [("exclude", "include", "exclude", false_inc, false_inc)] * 2
            + [("exclude", "exclude", "exclude", false_inc, false_inc)] * 5)
    task_id = seed_calibration(app, project_id, rows)

    body = client.get(f"/api/v1/asl/tasks/{task_id}/calibration", headers=auth).get_json()

    assert body["agreement"]["confusion"] == {"true_positive": 4, "false_negative": 3, "true_negative": 5,
                                              "false_positive": 2}
    assert body["agreement"]["recall"] == pytest.approx(4 / 7)
    assert body["agreement"]["specificity"] == pytest.approx(5 / 7)
    # po = 9/14; machine positive 6/14, human positive 7/14: pe = 6/14·7/14 + 8/14·7/14 = 1/2; κ = (9/14 − 1/2)/(1/2)
    assert body["agreement"]["kappa"] == pytest.approx(2 / 7)
    assert sorted(d["kind"] for d in body["disagreements"]) == ["false_include"] * 2 + ["missed_include"] * 3
    drivers = {d["element"]: d for d in body["picos_drivers"]}
    # missed includes: I judged not met by both models in 3 records (6), S by model a only (3)
    assert (drivers["I"]["missed_include_judgements"], drivers["I"]["records"]) == (6, 3)
    assert (drivers["S"]["missed_include_judgements"], drivers["S"]["records"]) == (3, 3)
    assert drivers["O"]["missed_include_judgements"] == 0 and drivers["C"]["missed_include_judgements"] == 0
    # false includes: P judged met by both models in 2 records (4); the missed includes' P "match" does not count
    assert (drivers["P"]["false_include_judgements"], drivers["P"]["missed_include_judgements"]) == (4, 0)
    assert [d["element"] for d in body["picos_drivers"]][:3] == ["I", "P", "S"]
    assert body["main_driver"] == "I"
    assert "picos" in body["basis"] and body["locked_config"] == LOCKED


def test_calibration_of_a_run_that_is_not_one_is_a_409(app, client, auth, project_id) -> None:
    task_id = seed_calibration(app, project_id, [("include", "include", "include", ALL_MATCH, ALL_MATCH)])
    with app.app_context():
        db.session().execute(update(ScreeningTask).where(ScreeningTask.id == task_id).values(is_calibration=False))
        db.session().commit()
    assert client.get(f"/api/v1/asl/tasks/{task_id}/calibration", headers=auth).status_code == 409


def _configure(app, monkeypatch, models: str) -> None:
    monkeypatch.setitem(app.config, "SCREENING_MODELS", models)
    monkeypatch.setitem(app.config, "SIM_BASE_URL", "http://127.0.0.1:9/v1")  # never called: no worker runs


def test_a_calibration_locks_its_configuration_and_the_full_run_records_it(app, client, auth, project_id,
                                                                           monkeypatch) -> None:
    _configure(app, monkeypatch, "sim:model-a,sim:model-b")
    assert client.post(f"/api/v1/asl/projects/{project_id}/calibration", json={},
                       headers=auth).status_code == 409  # no labelled records yet
    records = [{"title": f"Nudges for physicians {i}", "abstract": "A trial.", "doi": f"10.1/c{i}",
                "label": ("include" if i % 2 else "exclude") if i < 8 else None} for i in range(12)]
    assert client.post(f"/api/v1/asl/projects/{project_id}/literatures", json={"records": records},
                       headers=auth).status_code == 201

    response = client.post(f"/api/v1/asl/projects/{project_id}/calibration", json={"sample_size": 5}, headers=auth)
    assert response.status_code == 202, response.get_json()
    calibration = response.get_json()
    assert calibration["is_calibration"] is True and calibration["total_items"] == 5
    with app.app_context():
        session = db.session()
        task = session.get(ScreeningTask, calibration["id"])
        labelled = {r.id for r in session.query(Literature).where(Literature.label.is_not(None))}
        assert set(task.params["literature_ids"]) <= labelled
        assert task.locked_config["prompt_sha256"] == prompt_hash()
        assert task.locked_config["models"] == ["sim:model-a", "sim:model-b"]
        assert task.locked_config["parameters"]["temperature"] == 0
        session.execute(update(ScreeningTask).where(ScreeningTask.id == task.id).values(status="completed"))
        session.commit()
    again = client.post(f"/api/v1/asl/projects/{project_id}/calibration", json={"sample_size": 5}, headers=auth)
    with app.app_context():  # the same fixed sample when asked again
        session = db.session()
        assert session.get(ScreeningTask, again.get_json()["id"]).params == task.params
        session.execute(update(ScreeningTask).where(ScreeningTask.id == again.get_json()["id"])
                        .values(status="cancelled", is_calibration=False))
        session.commit()

    same = client.post(f"/api/v1/asl/projects/{project_id}/screening", json={}, headers=auth).get_json()
    assert same["calibration_task_id"] == calibration["id"] and same["config_differences"] == []
    methods = client.get(f"/api/v1/asl/tasks/{same['id']}/methods", headers=auth).get_json()
    assert "calibrated on 5 records" in methods["text"] and "same locked configuration" in methods["text"]
    assert client.post(f"/api/v1/asl/tasks/{same['id']}/cancel", headers=auth).status_code == 202

    _configure(app, monkeypatch, "sim:model-a,sim:model-c")
    changed = client.post(f"/api/v1/asl/projects/{project_id}/screening", json={}, headers=auth).get_json()
    assert changed["calibration_task_id"] == calibration["id"]
    assert changed["config_differences"] == [{"setting": "models", "calibration": ["sim:model-a", "sim:model-b"],
                                              "run": ["sim:model-a", "sim:model-c"]}]
    text = client.get(f"/api/v1/asl/tasks/{changed['id']}/methods", headers=auth).get_json()["text"]
    assert "differed from the calibrated configuration in: models (sim:model-a, sim:model-b in calibration, " \
           "sim:model-a, sim:model-c in the run)" in text
    report = client.get(f"/api/v1/asl/tasks/{calibration['id']}/calibration", headers=auth).get_json()
    assert report["followed_by"] == [same["id"], changed["id"]]
