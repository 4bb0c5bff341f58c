"""Budget and resume in process (no worker: rows and broker messages only): the task fields, resume's 409 / 422,
what a resume re-queues, and that finalize and the sweeper leave a paused task alone. The pause itself, on real
workers, is in ``tests/test_budget_run.py``."""

from __future__ import annotations

from app.extensions import db
from app.models import ScreeningTask, User
from app.services import engine
from tests.support.engine import add_records, query, scalar
from tests.support.screening import models_configured


def execute(database_url: str, sql: str, *params: object) -> None:
    """A statement without rows on a fresh autocommit connection."""
    import psycopg

    from tests.support.database import conninfo

    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        conn.execute(sql, params)


def _pause(database_url: str, task_id: int, spent: float, cursor: int = 2) -> None:
    """What a budget pause leaves: the task paused with its spend, its batches pending with their cursors."""
    execute(database_url, "UPDATE screening_tasks SET status = 'paused', paused_reason = 'budget', "
                          "budget_spent_usd = %s WHERE id = %s", spent, task_id)
    execute(database_url, "UPDATE screening_batches SET cursor = %s, dispatched_at = now() - interval '1 hour' "
                          "WHERE task_id = %s", cursor, task_id)


def test_a_budgeted_run_shows_its_budget_and_resume_checks_state_and_amount(app, client, auth, project_id,
                                                                              monkeypatch, database_url) -> None:
    models_configured(app, monkeypatch)
    add_records(app, project_id, 6)
    assert client.post(f"/api/v1/asl/projects/{project_id}/screening", json={"budget_usd": -1},
                       headers=auth).status_code == 422
    response = client.post(f"/api/v1/asl/projects/{project_id}/screening", json={"budget_usd": 0.5, "batch_size": 3},
                           headers=auth)
    assert response.status_code == 202
    task = response.get_json()
    assert task["budget_usd"] == 0.5 and task["budget_spent_usd"] == 0 and task["paused_reason"] is None

    not_paused = client.post(f"/api/v1/asl/tasks/{task['id']}/resume", json={"budget_usd": 1}, headers=auth)
    assert not_paused.status_code == 409 and "paused" in not_paused.get_json()["message"]

    _pause(database_url, task["id"], 0.5)
    before = dict(query(database_url, "SELECT batch_index, celery_task_id FROM screening_batches "
                                      "WHERE task_id = %s", task["id"]))
    with app.app_context():  # neither finalize nor the sweeper touches a paused task
        ctx = engine.engine_context(app)
        assert engine.finalize_task(ctx, task["id"]) is None
        report = engine.sweep(ctx)
        assert not [r for r in report.resent if r[0] == task["id"]] and task["id"] not in report.finalized
    assert client.get(f"/api/v1/asl/tasks/{task['id']}", headers=auth).get_json()["status"] == "paused"

    too_low = client.post(f"/api/v1/asl/tasks/{task['id']}/resume", json={"budget_usd": 0.5}, headers=auth)
    assert too_low.status_code == 422 and "budget_usd" in too_low.get_json()["errors"]["json"]
    assert client.post(f"/api/v1/asl/tasks/{task['id']}/resume", json={}, headers=auth).status_code == 422

    resumed = client.post(f"/api/v1/asl/tasks/{task['id']}/resume", json={"budget_usd": 2}, headers=auth)
    assert resumed.status_code == 202
    body = resumed.get_json()
    assert body["status"] == "running" and body["paused_reason"] is None and body["budget_usd"] == 2
    batches = query(database_url, "SELECT batch_index, status, cursor, celery_task_id FROM screening_batches "
                                  "WHERE task_id = %s ORDER BY batch_index", task["id"])
    # re-sent under new ids (the old chord is finished), continuing from their checkpoints
    assert [(b[1], b[2]) for b in batches] == [("pending", 2), ("pending", 2)]
    assert all(before[b[0]] != b[3] for b in batches)


def test_the_dc_resume_endpoint(app, client, auth, database_url) -> None:
    with app.app_context():
        session = db.session()
        owner = session.query(User).filter_by(name="alice").one()
        task = ScreeningTask(project_id=None, owner_id=owner.id, task_type="dc_extraction", status="paused",
                             paused_reason="budget", total_items=0, total_batches=0, batch_size=50, model_config={},
                             budget_usd=1, budget_spent_usd=1)
        session.add(task)
        session.commit()
        task_id = task.id
    assert client.post(f"/api/v1/dc/tasks/{task_id}/resume", json={"budget_usd": 1},
                       headers=auth).status_code == 422
    resumed = client.post(f"/api/v1/dc/tasks/{task_id}/resume", json={"budget_usd": 3}, headers=auth)
    assert resumed.status_code == 202
    # nothing was left to run: the resume finalizes it from its rows
    assert scalar(database_url, "SELECT status FROM screening_tasks WHERE id = %s", task_id) == "completed"
    assert client.post(f"/api/v1/dc/tasks/{task_id}/resume", json={"budget_usd": 4}, headers=auth).status_code == 409
