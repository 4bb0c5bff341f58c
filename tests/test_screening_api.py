"""The screening API: contract paths and fields, ownership (404), 409 cases, filters, review, export.

No worker runs here: starting a run only writes rows and broker messages. Result rows for the read endpoints
are written with the engine's own checkpoint statement (``write_checkpoint``) on a claimed batch.
"""

from __future__ import annotations

import csv
import io

import rispy

from tests.support.engine import add_records, query, scalar
from tests.support.screening import models_configured, seed_results, start

TASK_FIELDS = {"id", "project_id", "task_type", "status", "total_items", "processed_items", "success_items",
               "failed_items", "conflict_items", "total_batches", "processed_batches", "progress", "eta_seconds",
               "started_at", "completed_at", "prompt_tokens", "completion_tokens", "cost_estimate", "error"}
BATCH_FIELDS = {"batch_index", "status", "cursor", "size", "attempts", "lease_owner", "lease_expires_at",
                "last_checkpoint_at", "error"}
RESULT_FIELDS = {"id", "literature_id", "title", "decisions", "final_decision", "has_conflict",
                 "manual_review_required", "review"}


def test_start_without_models_is_a_409(app, client, auth, project_id, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "SCREENING_MODELS", "")
    monkeypatch.delenv("SCREENING_MODELS", raising=False)
    add_records(app, project_id, 3)
    response = start(client, auth, project_id)
    assert response.status_code == 409
    assert "models" in response.get_json()["message"].lower()


def test_start_without_records_is_a_409(app, client, auth, project_id, monkeypatch, database_url) -> None:
    models_configured(app, monkeypatch)
    response = start(client, auth, project_id)
    assert response.status_code == 409
    assert "no records" in response.get_json()["message"]
    assert scalar(database_url, "SELECT count(*) FROM screening_tasks") == 0


def test_start_creates_the_task_and_its_batches(app, client, auth, project_id, monkeypatch,
                                                database_url) -> None:
    models_configured(app, monkeypatch)
    add_records(app, project_id, 25)
    response = start(client, auth, project_id, batch_size=10)
    assert response.status_code == 202
    task = response.get_json()
    assert TASK_FIELDS <= set(task)
    assert (task["status"], task["total_items"], task["total_batches"], task["progress"]) == ("pending", 25, 3, 0.0)
    rows = query(database_url, "SELECT batch_index, size, celery_task_id, dispatched_at FROM screening_batches "
                               "WHERE task_id = %s ORDER BY batch_index", task["id"])
    assert [(r[0], r[1]) for r in rows] == [(0, 10), (1, 10), (2, 5)]
    assert all(r[2] and r[3] for r in rows)
    snapshot = scalar(database_url, "SELECT model_config FROM screening_tasks WHERE id = %s", task["id"])
    assert [m["model"] for m in snapshot["models"]] == ["model-a", "model-b"]
    # the chord's header messages carry the batch rows' celery ids
    payloads = " ".join(r[0] for r in query(database_url, "SELECT payload FROM kombu_message"))
    assert all(r[2] in payloads for r in rows)

    # a second start while this one is active is refused (it would pay for every record twice)
    assert start(client, auth, project_id).status_code == 409

    listed = client.get(f"/api/v1/asl/projects/{project_id}/tasks", headers=auth)
    assert listed.status_code == 200 and [t["id"] for t in listed.get_json()] == [task["id"]]
    assert "X-Pagination" in listed.headers
    batches = client.get(f"/api/v1/asl/tasks/{task['id']}/batches", headers=auth).get_json()
    assert len(batches) == 3 and BATCH_FIELDS <= set(batches[0])


def test_start_uses_the_chunk_strategy_and_validates_input(app, client, auth, project_id, monkeypatch,
                                                           database_url) -> None:
    models_configured(app, monkeypatch)
    add_records(app, project_id, 150)
    for body, field in (({"batch_size": 0}, "batch_size"), ({"batch_size": "many"}, "batch_size"),
                        ({"task_type": "poetry"}, "task_type")):
        response = start(client, auth, project_id, **body)
        assert response.status_code == 422, body
        assert field in str(response.get_json()["errors"])
    assert scalar(database_url, "SELECT count(*) FROM screening_tasks") == 0
    task = start(client, auth, project_id).get_json()
    assert (task["batch_size"], task["total_batches"]) == (100, 2)  # title/abstract: 100 per batch


def test_other_users_see_404(app, client, auth, project_id, monkeypatch, make_token) -> None:
    models_configured(app, monkeypatch)
    add_records(app, project_id, 5)
    task = start(client, auth, project_id).get_json()
    result_id = seed_results(app, task["id"])[0]
    bob = {"Authorization": f"Bearer {make_token('bob')}"}
    assert start(client, bob, project_id).status_code == 404
    for method, path in (("get", f"/api/v1/asl/projects/{project_id}/tasks"),
                         ("get", f"/api/v1/asl/tasks/{task['id']}"),
                         ("get", f"/api/v1/asl/tasks/{task['id']}/batches"),
                         ("get", f"/api/v1/asl/tasks/{task['id']}/results"),
                         ("get", f"/api/v1/asl/tasks/{task['id']}/export?format=csv"),
                         ("post", f"/api/v1/asl/tasks/{task['id']}/cancel"),
                         ("post", f"/api/v1/asl/tasks/{task['id']}/retry")):
        assert getattr(client, method)(path, headers=bob).status_code == 404, path
    response = client.patch(f"/api/v1/asl/results/{result_id}", json={"review_decision": "include"}, headers=bob)
    assert response.status_code == 404
    assert client.get(f"/api/v1/asl/tasks/{task['id']}").status_code == 401


def test_cancel_of_a_queued_run_is_immediate_and_retry_refuses_running_tasks(app, client, auth, project_id,
                                                                              monkeypatch, database_url) -> None:
    models_configured(app, monkeypatch)
    add_records(app, project_id, 20)
    task = start(client, auth, project_id, batch_size=10).get_json()
    assert client.post(f"/api/v1/asl/tasks/{task['id']}/retry", headers=auth).status_code == 409  # still pending
    response = client.post(f"/api/v1/asl/tasks/{task['id']}/cancel", headers=auth)
    assert response.status_code == 202
    assert response.get_json()["status"] == "cancelled"  # no batch had started: nothing to wait for
    assert scalar(database_url, "SELECT count(*) FROM screening_batches WHERE task_id = %s AND status = "
                                "'cancelled'", task["id"]) == 2
    assert client.post(f"/api/v1/asl/tasks/{task['id']}/cancel", headers=auth).status_code == 409


def test_results_filters_review_and_export(app, client, auth, project_id, monkeypatch, database_url) -> None:
    models_configured(app, monkeypatch)
    add_records(app, project_id, 10)
    task = start(client, auth, project_id, batch_size=10).get_json()
    ids = seed_results(app, task["id"])
    assert len(ids) == 10

    body = client.get(f"/api/v1/asl/tasks/{task['id']}", headers=auth).get_json()
    assert body["status"] == "completed_with_errors"
    assert (body["processed_items"], body["success_items"], body["failed_items"], body["conflict_items"]) == \
        (10, 8, 2, 2)
    assert body["progress"] == 1.0 and body["processed_batches"] == 1 and body["prompt_tokens"] == 1000

    url = f"/api/v1/asl/tasks/{task['id']}/results"
    page = client.get(url, headers=auth, query_string={"page_size": 4})
    assert page.status_code == 200 and len(page.get_json()) == 4
    assert '"total": 10' in page.headers["X-Pagination"]
    first = page.get_json()[0]
    assert RESULT_FIELDS <= set(first)
    assert {"model", "decision", "reason", "confidence"} == set(first["decisions"][0])

    def count(**filters) -> int:
        response = client.get(url, headers=auth, query_string={**filters, "page_size": 100})
        assert response.status_code == 200, response.get_json()
        return len(response.get_json())

    assert count(decision="include") == 2
    assert count(decision="exclude") == 4
    assert count(decision="conflict") == 2
    assert count(decision="failed") == 2
    assert count(conflict="true") == 2
    assert count(conflict="false") == 8
    assert count(review="required") == 2
    assert client.get(url, headers=auth, query_string={"decision": "maybe"}).status_code == 422

    conflict_id = client.get(url, headers=auth, query_string={"decision": "conflict"}).get_json()[0]["id"]
    for bad in ({}, {"review_decision": "perhaps"}, {"review_decision": "include", "note": "x" * 6000}):
        response = client.patch(f"/api/v1/asl/results/{conflict_id}", json=bad, headers=auth)
        assert response.status_code == 422, bad
    response = client.patch(f"/api/v1/asl/results/{conflict_id}",
                            json={"review_decision": "include", "note": "meets all PICOS"}, headers=auth)
    assert response.status_code == 200
    reviewed = response.get_json()
    assert reviewed["review"]["decision"] == "include" and reviewed["review"]["note"] == "meets all PICOS"
    assert reviewed["final_decision"] == "include" and reviewed["has_conflict"] is True
    assert count(review="required") == 1
    assert count(review="reviewed") == 1
    assert client.patch("/api/v1/asl/results/999999", json={"review_decision": "include"},
                        headers=auth).status_code == 404

    exported = client.get(f"/api/v1/asl/tasks/{task['id']}/export", headers=auth,
                          query_string={"format": "csv"})
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert len(rows) == 10
    by_id = {int(r["literature_id"]): r for r in rows}
    reviewed_row = by_id[reviewed["literature_id"]]
    assert (reviewed_row["decision"], reviewed_row["llm_decision"], reviewed_row["review_note"]) == \
        ("include", "conflict", "meets all PICOS")
    assert reviewed_row["sim:model-a reason"] == "A says include"

    ris = client.get(f"/api/v1/asl/tasks/{task['id']}/export", headers=auth, query_string={"format": "ris"})
    assert ris.status_code == 200
    entries = rispy.loads(ris.get_data(as_text=True))
    assert len(entries) == 10
    # the records were imported as JSON without a record type: RIS "generic"
    assert all(e["type_of_reference"] == "GEN" and e["title"] and e["doi"].startswith("10.1000/") for e in entries)
    notes = " ".join(n for e in entries for n in e["notes"])
    assert "litscreen decision: include" in notes and "human review: include (meets all PICOS)" in notes
    assert "A says exclude" in notes
    assert client.get(f"/api/v1/asl/tasks/{task['id']}/export", headers=auth,
                      query_string={"format": "xls"}).status_code == 422

    # retry of a finished task with failed items re-queues just their batch, as a new attempt
    retried = client.post(f"/api/v1/asl/tasks/{task['id']}/retry", headers=auth)
    assert retried.status_code == 202
    assert retried.get_json()["status"] == "running" and retried.get_json()["failed_items"] == 0
    assert scalar(database_url, "SELECT count(*) FROM screening_results WHERE task_id = %s", task["id"]) == 8
    assert scalar(database_url, "SELECT attempt FROM screening_tasks WHERE id = %s", task["id"]) == 2


def test_openapi_documents_the_screening_paths(client) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in ("/api/v1/asl/projects/{project_id}/screening", "/api/v1/asl/tasks/{task_id}",
                 "/api/v1/asl/tasks/{task_id}/results", "/api/v1/asl/results/{result_id}"):
        assert path in paths
