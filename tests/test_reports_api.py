"""The reports a reviewer defends a run with: agreement, audit sample and bound, PRISMA 2020, methods, estimate.

Result rows are written directly (no worker runs here); the cost estimate against a real run is in
``tests/test_estimate_run.py``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Literature, Project, ScreeningResult, ScreeningTask
from app.services.statistics import clopper_pearson_upper

SNAPSHOT = {"models": [{"provider": "sim", "model": "model-a"}, {"provider": "sim", "model": "model-b"}],
            "prompt_version": "asl-ta-test", "decision_rule": "unanimous"}


def decisions(a: str, b: str) -> list[dict]:
    return [{"model": "model-a", "provider": "sim", "decision": a, "reason": "r", "confidence": 0.9,
             "completion_tokens": 50, "cached": False},
            {"model": "model-b", "provider": "sim", "decision": b, "reason": "r", "confidence": 0.8,
             "completion_tokens": 70, "cached": False}]


def seed_task(app, project_id: int, rows: list[tuple[str | None, str, str]]) -> int:
    """A finished task with one result per (human label, model-a decision, model-b decision)."""
    with app.app_context():
        session = db.session()
        records = [Literature(project_id=project_id, title=f"Record {i}", abstract="About nudges.", authors=[],
                              keywords=[], source_format="ris", label=label, dedup_key=f"k{i}")
                   for i, (label, _, _) in enumerate(rows)]
        session.add_all(records)
        owner_id = session.get(Project, project_id).owner_id
        task = ScreeningTask(project_id=project_id, owner_id=owner_id, status="completed", total_items=len(rows),
                             total_batches=1,
                             batch_size=len(rows), model_config=SNAPSHOT, processed_items=len(rows),
                             success_items=len(rows))
        session.add(task)
        session.flush()
        for record, (_, a, b) in zip(records, rows, strict=True):
            final = a if a == b else "conflict"
            session.add(ScreeningResult(task_id=task.id, item_id=record.id, literature_id=record.id, batch_index=0,
                                        decisions=decisions(a, b), final_decision=final, llm_decision=final,
                                        has_conflict=a != b,
                                        manual_review_required=a != b, status="success"))
        session.commit()
        return task.id


def test_agreement_counts_and_measures(app, client, auth, project_id):
    rows = ([("include", "include", "include")] * 8 + [("include", "exclude", "exclude")] * 2
            + [("exclude", "exclude", "exclude")] * 30 + [("exclude", "include", "exclude")] * 10
            + [(None, "include", "include")] * 5)
    task_id = seed_task(app, project_id, rows)
    body = client.get(f"/api/v1/asl/tasks/{task_id}/agreement", headers=auth).get_json()
    assert body["n"] == 50  # unlabelled records are not counted
    assert body["confusion"] == {"true_positive": 8, "false_negative": 2, "true_negative": 30, "false_positive": 10}
    assert body["recall"] == pytest.approx(0.8)
    assert body["specificity"] == pytest.approx(0.75)
    assert body["work_saved"] == pytest.approx(32 / 50)
    # po = 38/50; machine positive 18/50, human positive 10/50: pe = 0.36*0.2 + 0.64*0.8 = 0.584
    assert body["kappa"] == pytest.approx((0.76 - 0.584) / (1 - 0.584))
    pi = (18 / 50 + 10 / 50) / 2
    assert body["ac1"] == pytest.approx((0.76 - 2 * pi * (1 - pi)) / (1 - 2 * pi * (1 - pi)))
    assert len(body["kappa_ci95"]) == 2 and body["kappa_ci95"][0] < body["kappa"] < body["kappa_ci95"][1]


def test_agreement_is_not_affected_by_a_later_human_review(app, client, auth, project_id):
    task_id = seed_task(app, project_id, [("include", "exclude", "include")] + [("exclude", "exclude", "exclude")])
    conflict = client.get(f"/api/v1/asl/tasks/{task_id}/results?conflict=true", headers=auth).get_json()[0]
    assert client.patch(f"/api/v1/asl/results/{conflict['id']}", json={"review_decision": "include"},
                        headers=auth).status_code == 200
    body = client.get(f"/api/v1/asl/tasks/{task_id}/agreement", headers=auth).get_json()
    assert body["confusion"]["true_positive"] == 1  # the machine sent it on as a conflict, whatever came after


def test_audit_sample_review_and_bound(app, client, auth, project_id):
    task_id = seed_task(app, project_id, [(None, "exclude", "exclude")] * 40 + [(None, "include", "include")] * 5)
    assert client.post(f"/api/v1/asl/tasks/{task_id}/audit-sample", json={"size": 0},
                       headers=auth).status_code == 422
    drawn = client.post(f"/api/v1/asl/tasks/{task_id}/audit-sample", json={"size": 20}, headers=auth)
    assert drawn.status_code == 201
    body = drawn.get_json()
    assert (body["machine_excluded"], body["sampled"], body["reviewed"], body["added"]) == (40, 20, 0, 20)
    assert body["miss_rate_upper_95"] is None
    with app.app_context():
        sampled = list(db.session().scalars(select(ScreeningResult).where(
            ScreeningResult.task_id == task_id, ScreeningResult.audit_sampled_at.is_not(None))))
    assert len(sampled) == 20
    assert all(r.final_decision == "exclude" and r.manual_review_required for r in sampled)
    queue = client.get(f"/api/v1/asl/tasks/{task_id}/results?review=required", headers=auth).get_json()
    assert {r["id"] for r in queue} == {r.id for r in sampled} == set(body["result_ids"])

    for index, result in enumerate(sampled):
        decision = "include" if index == 0 else "exclude"
        assert client.patch(f"/api/v1/asl/results/{result.id}", json={"review_decision": decision},
                            headers=auth).status_code == 200
    audit = client.get(f"/api/v1/asl/tasks/{task_id}/audit", headers=auth).get_json()
    assert (audit["machine_excluded"], audit["sampled"], audit["reviewed"], audit["missed_includes"]) == (40, 20, 20, 1)
    assert audit["miss_rate_upper_95"] == pytest.approx(clopper_pearson_upper(1, 20))
    assert audit["missed_records_upper_95"] == -(-audit["miss_rate_upper_95"] * 40 // 1)
    assert "95 %" in audit["meaning"]

    # the rest can be sampled too, then nothing is left
    assert client.post(f"/api/v1/asl/tasks/{task_id}/audit-sample", json={"size": 100},
                       headers=auth).get_json()["sampled"] == 40
    assert client.post(f"/api/v1/asl/tasks/{task_id}/audit-sample", json={"size": 1},
                       headers=auth).status_code == 409


def test_reports_of_another_users_task_are_404(app, client, auth, make_token, project_id):
    task_id = seed_task(app, project_id, [(None, "exclude", "exclude")])
    stranger = {"Authorization": f"Bearer {make_token('mallory')}"}
    for path in ("agreement", "audit", "methods"):
        assert client.get(f"/api/v1/asl/tasks/{task_id}/{path}", headers=stranger).status_code == 404
    assert client.post(f"/api/v1/asl/tasks/{task_id}/audit-sample", json={"size": 1},
                       headers=stranger).status_code == 404
    assert client.get(f"/api/v1/asl/projects/{project_id}/prisma", headers=stranger).status_code == 404
    with app.app_context():
        assert db.session().scalar(select(ScreeningResult.audit_sampled_at)) is None


def test_prisma_counts_and_svg(app, client, auth, project_id):
    rows = ([(None, "exclude", "exclude")] * 6 + [(None, "include", "include")] * 3
            + [(None, "include", "exclude")] * 4)
    task_id = seed_task(app, project_id, rows)
    conflicts = client.get(f"/api/v1/asl/tasks/{task_id}/results?conflict=true", headers=auth).get_json()
    for result, decision in zip(conflicts, ["include", "exclude", "exclude"], strict=False):
        client.patch(f"/api/v1/asl/results/{result['id']}", json={"review_decision": decision}, headers=auth)
    body = client.get(f"/api/v1/asl/projects/{project_id}/prisma", headers=auth).get_json()
    assert body["identification"]["identified"] == 13
    assert body["identification"]["by_source"] == {"ris": 13}
    screening = body["screening"]
    assert screening["records_screened"] == 13
    assert screening["marked_ineligible_by_automation"] == 6
    assert screening["screened_by_humans"] == 7
    assert screening["excluded_by_humans"] == 2
    assert screening["awaiting_human_decision"] == 1
    assert screening["sent_to_fulltext"] == 4
    assert body["fulltext"]["reports_sought"] == 4

    svg = client.get(f"/api/v1/asl/projects/{project_id}/prisma?format=svg", headers=auth)
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    root = ET.fromstring(svg.data)
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "Records marked as ineligible by" in text and "automation tools (n = 6)" in text
    assert "Records excluded (n = 2)" in text
    assert client.get(f"/api/v1/asl/projects/{project_id}/prisma?format=pdf", headers=auth).status_code == 422


def test_methods_paragraph_from_the_tasks_records(app, client, auth, project_id):
    task_id = seed_task(app, project_id, [("include", "include", "exclude"), ("exclude", "exclude", "exclude")])
    conflict = client.get(f"/api/v1/asl/tasks/{task_id}/results?conflict=true", headers=auth).get_json()[0]
    client.patch(f"/api/v1/asl/results/{conflict['id']}", json={"review_decision": "include"}, headers=auth)
    body = client.get(f"/api/v1/asl/tasks/{task_id}/methods", headers=auth).get_json()
    text = body["text"]
    assert "model-a (sim)" in text and "model-b (sim)" in text
    assert "asl-ta-test" in text and body["prompt_sha256"][:16] in text
    assert "alice: 1 records" in text
    assert "recall of 100.0%" in text
    plain = client.get(f"/api/v1/asl/tasks/{task_id}/methods?format=text", headers=auth)
    assert plain.mimetype == "text/plain" and plain.get_data(as_text=True).strip() == text


def test_estimate_needs_models_and_counts_every_call(app, client, auth, project_id, monkeypatch):
    monkeypatch.setitem(app.config, "SCREENING_MODELS", "")
    monkeypatch.delenv("SCREENING_MODELS", raising=False)
    assert client.post(f"/api/v1/asl/projects/{project_id}/screening/estimate", json={},
                       headers=auth).status_code == 409
    monkeypatch.setitem(app.config, "SCREENING_MODELS", "sim:model-a,sim:model-b")
    monkeypatch.setitem(app.config, "SIM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setitem(app.config, "LLM_PRICES", '{"sim:model-a": {"input": 1.0, "output": 2.0}, '
                                                  '"sim:model-b": {"input": 1.0, "output": 2.0}}')
    with app.app_context():
        session = db.session()
        session.add_all([Literature(project_id=project_id, title=f"T{i}", abstract="x" * 400, authors=[], keywords=[],
                                    source_format="ris", dedup_key=f"e{i}") for i in range(10)])
        session.commit()
    body = client.post(f"/api/v1/asl/projects/{project_id}/screening/estimate", json={}, headers=auth).get_json()
    assert (body["records"], body["calls"]) == (10, 20)
    assert body["prompt_tokens"] > 10 * 2 * 100  # the 400-character abstracts alone are 100 tokens each
    expected = (body["prompt_tokens"] * 1.0 + body["completion_tokens"] * 2.0) / 1e6
    assert body["cost_usd"] == pytest.approx(expected, rel=1e-6)
    assert {m["completion_tokens_basis"] for m in body["by_model"]} == {"typical answer"}
    with app.app_context():
        assert db.session().scalar(select(ScreeningTask.id)) is None  # an estimate starts nothing


def test_estimate_learns_answer_length_from_earlier_runs(app, client, auth, project_id, monkeypatch):
    seed_task(app, project_id, [(None, "include", "include")] * 4)
    monkeypatch.setitem(app.config, "SCREENING_MODELS", "sim:model-a,sim:model-b")
    monkeypatch.setitem(app.config, "SIM_BASE_URL", "http://127.0.0.1:9/v1")
    body = client.post(f"/api/v1/asl/projects/{project_id}/screening/estimate", json={}, headers=auth).get_json()
    by_model = {m["model"]: m for m in body["by_model"]}
    assert by_model["sim:model-a"]["completion_tokens"] == 4 * 50
    assert by_model["sim:model-b"]["completion_tokens"] == 4 * 70
    assert by_model["sim:model-a"]["completion_tokens_basis"] == "earlier runs"
