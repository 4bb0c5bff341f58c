"""A full-text run on real PDFs: real ``celery worker`` processes, the simulator as a real HTTP server, real
PostgreSQL. Decisions with PRISMA exclusion reasons, verified evidence (a planted wrong quote is flagged), per-field
review, CSV / XLSX export, PRISMA full-text counts; and a resume after ``kill -9`` that pays no finished document
twice (counted at the simulator with the LLM cache off)."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from tests.fulltext_support import QUALITATIVE, RCT, REVIEW, attach_all, heart_failure_project, pdf_bytes, upload
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
from tests.support.processes import ProcessGroup, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fast_teardown")]


def results_by_record(client, auth, task_id: int) -> dict[int, dict]:
    response = client.get(f"/api/v1/asl/tasks/{task_id}/results?page_size=100", headers=auth)
    assert response.status_code == 200, response.get_json()
    return {r["literature_id"]: r for r in response.get_json()}


def test_fulltext_run_review_export_and_prisma(app, client, auth, database_url: str, processes: ProcessGroup,
                                               monkeypatch) -> None:
    simulator = sim(processes, latency=0.0, wrong_quote_fields="funding_conflicts")
    configure_app(app, monkeypatch, simulator)
    project_id = heart_failure_project(client, auth)
    ids = attach_all(app, client, auth, project_id)
    processes.start_worker(database_url, "w1", concurrency=1, **engine_env(simulator))

    task = start_run(client, auth, project_id, task_type="fulltext", literature_ids=sorted(ids.values()))
    assert task["task_type"] == "fulltext" and task["total_items"] == 3

    assert wait_final(database_url, task["id"]) == "completed"
    assert result_count(database_url, task["id"]) == 3 and duplicate_results(database_url, task["id"]) == 0
    assert simulator_calls(simulator) == 6          # two models, each document once (each fits the context)
    results = results_by_record(client, auth, task["id"])
    trial, review, qualitative = results[ids[RCT]], results[ids[REVIEW]], results[ids[QUALITATIVE]]
    assert trial["final_decision"] == "include" and trial["exclusion_reason"] is None
    assert (review["final_decision"], review["exclusion_reason"]) == ("exclude", "not a primary study")
    assert (qualitative["final_decision"], qualitative["exclusion_reason"]) == ("exclude", "wrong study design")
    fields = trial["fields"]
    assert fields["participants"]["value"] == "412 randomised / 398 analysed" and fields["participants"]["page"] == 2
    assert fields["participants"]["verified"] is True and fields["participants"]["agreed"] is True
    assert set(fields["participants"]["by_model"]) == {"sim:model-a", "sim:model-b"}
    # the simulator planted a quote that is not in the document: flagged, and sent to a human
    assert fields["funding_conflicts"]["unverified"] is True and fields["funding_conflicts"]["verified"] is False
    assert trial["manual_review_required"] is True
    body = client.get(f"/api/v1/asl/tasks/{task['id']}", headers=auth).get_json()
    assert body["prompt_tokens"] > 0 and body["processed_items"] == 3

    # per-field review: a wrong field name is a 422 naming it and changes nothing; then every flagged field
    bad = client.patch(f"/api/v1/asl/results/{trial['id']}", headers=auth,
                       json={"fields": {"sample_size": {"value": "412"}}})
    assert bad.status_code == 422 and "fields.sample_size" in str(bad.get_json()["errors"])
    flagged = [name for name, field in fields.items() if field["review_required"]]
    assert "funding_conflicts" in flagged
    reviewed = client.patch(f"/api/v1/asl/results/{trial['id']}", headers=auth, json={"fields": {
        name: {"value": "checked: " + str(fields[name]["value"]), "note": "read the PDF"} for name in flagged}})
    assert reviewed.status_code == 200, reviewed.get_json()
    after = reviewed.get_json()
    assert after["manual_review_required"] is False and after["final_decision"] == "include"
    assert after["fields"]["funding_conflicts"]["review"]["note"] == "read the PDF"
    assert after["fields"]["funding_conflicts"]["llm_value"] == fields["funding_conflicts"]["value"]
    assert after["fields"]["funding_conflicts"]["value"].startswith("checked: ")

    # export: one row per study, every field with evidence, page and agreement, the exclusion reasons
    csv_body = client.get(f"/api/v1/asl/tasks/{task['id']}/export?format=csv", headers=auth)
    assert csv_body.status_code == 200
    rows = list(csv.DictReader(io.StringIO(csv_body.get_data(as_text=True))))
    assert len(rows) == 3
    by_id = {int(r["literature_id"]): r for r in rows}
    assert by_id[ids[REVIEW]]["exclusion_reason"] == "not a primary study"
    assert by_id[ids[RCT]]["participants evidence"] == fields["participants"]["evidence"]
    assert by_id[ids[RCT]]["participants page"] == "2" and by_id[ids[RCT]]["participants agreed"] == "true"
    assert by_id[ids[RCT]]["funding_conflicts verified"] == "false"
    assert by_id[ids[RCT]]["funding_conflicts reviewed"] == "true"
    xlsx = client.get(f"/api/v1/asl/tasks/{task['id']}/export?format=xlsx", headers=auth)
    assert xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.get_data())).active
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert table[0] == list(rows[0].keys()) and len(table) == 4

    # PRISMA full-text counts (no title/abstract task here: the reports sought are the ones assessed)
    from app.extensions import db
    from app.services.fulltext.prisma import fulltext_prisma_counts

    with app.app_context():
        counts = fulltext_prisma_counts(db.session(), project_id)
    assert counts["reports_sought"] == 3 and counts["reports_not_retrieved"] == 0
    assert counts["reports_assessed"] == 3 and counts["reports_excluded"] == 2
    assert counts["excluded_by_reason"] == {"wrong study design": 1, "not a primary study": 1}
    assert counts["studies_included"] == 1 and counts["awaiting_review"] == 0


def test_resume_after_kill9_pays_no_finished_document_twice(app, client, auth, database_url: str,
                                                           processes: ProcessGroup, monkeypatch, beat) -> None:
    simulator = sim(processes, latency=0.3)
    # two documents in flight per worker (as many as the provider allows calls; each document asks both models),
    # a checkpoint after every document
    env = engine_env(simulator, SIM_MAX_CONCURRENCY=2, CHECKPOINT_EVERY=1)
    configure_app(app, monkeypatch, simulator, SIM_MAX_CONCURRENCY=2, CHECKPOINT_EVERY=1)
    project_id = heart_failure_project(client, auth)
    record_ids = add_records(app, project_id, 12)
    pdf = pdf_bytes(RCT)
    for literature_id in record_ids:
        assert upload(client, auth, project_id, f"{literature_id}.pdf", pdf, literature_id).status_code == 201
    victim = processes.start_worker(database_url, "victim", concurrency=1, **env)
    beat(env)
    task = start_run(client, auth, project_id, task_type="fulltext", literature_ids=record_ids, batch_size=12)

    # three documents checkpointed and the batch still running (not "cursor >= 3": the cursor is the finished
    # prefix, so a first document still waiting for its calls holds it at 0 while later ones finish)
    at_kill = wait_for(lambda: query(database_url, "SELECT b.cursor, r.done FROM screening_batches b, LATERAL "
                                                   "(SELECT count(*) AS done FROM screening_results "
                                                   " WHERE task_id = b.task_id) r WHERE b.task_id = %s "
                                                   "AND b.status = 'running' AND r.done BETWEEN 3 AND 11", task["id"]),
                       timeout=180, interval=0.05, message="three documents checkpointed, the batch running")
    ProcessGroup.kill_tree(victim)   # kill -9 of the worker and its pool child
    victim.wait(timeout=10)
    calls_at_kill = simulator_calls(simulator)
    processes.start_worker(database_url, "rescuer", concurrency=1, **env)

    assert wait_final(database_url, task["id"], timeout=120) == "completed"
    assert result_count(database_url, task["id"]) == 12 and duplicate_results(database_url, task["id"]) == 0
    calls = simulator_calls(simulator)
    # every document costs two calls; at most the two documents in flight at the kill were paid again
    assert 24 <= calls <= 24 + 2 * 2, (calls, calls_at_kill, at_kill)
    assert scalar(database_url, "SELECT attempts FROM screening_batches WHERE task_id = %s", task["id"]) >= 2
