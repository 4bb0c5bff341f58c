"""Sending after commit is structural: a message published inside a transaction reaches the broker only when the
transaction commits, and never when it rolls back (real broker tables, real PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import text

from app import task_names
from app.services import engine
from tests.support.engine import scalar


def messages(database_url: str) -> int:
    return scalar(database_url, "SELECT count(*) FROM kombu_message WHERE payload LIKE %s", "%litscreen.ping%")


def test_a_message_is_sent_after_commit_and_dropped_on_rollback(app, database_url: str) -> None:
    ctx = engine.engine_context(app)
    with app.app_context():
        with ctx.session() as session:
            session.execute(text("SELECT 1"))  # a transaction is open
            ctx.publisher.publish(session, engine.TaskMessage(task_names.PING, (1,)))
            assert messages(database_url) == 0  # queued, not sent: nothing committed yet
            session.commit()
            assert messages(database_url) == 1

            session.execute(text("SELECT 1"))
            ctx.publisher.publish(session, engine.TaskMessage(task_names.PING, (2,)))
            session.rollback()
            session.commit()  # a later commit must not send what the rollback dropped
            assert messages(database_url) == 1

        with ctx.session() as session:  # outside a transaction: sent at once
            ctx.publisher.publish(session, engine.TaskMessage(task_names.PING, (3,)))
            assert messages(database_url) == 2


def test_starting_a_run_that_fails_validation_sends_nothing(app, client, auth, project_id, database_url,
                                                            monkeypatch) -> None:
    monkeypatch.setitem(app.config, "SCREENING_MODELS", "sim:model-a,sim:model-b")
    monkeypatch.setitem(app.config, "SIM_BASE_URL", "http://127.0.0.1:9/v1")
    from tests.support.engine import add_records

    ids = add_records(app, project_id, 3)
    response = client.post(f"/api/v1/asl/projects/{project_id}/screening", headers=auth,
                           json={"literature_ids": [ids[0], 999_999]})
    assert response.status_code == 422 and "literature_ids" in str(response.get_json()["errors"])
    assert scalar(database_url, "SELECT count(*) FROM screening_tasks") == 0
    assert scalar(database_url, "SELECT count(*) FROM kombu_message") == 0

    response = client.post(f"/api/v1/asl/projects/{project_id}/screening", headers=auth,
                           json={"literature_ids": [ids[0], ids[2]]})
    assert response.status_code == 202 and response.get_json()["total_items"] == 2
    assert scalar(database_url, "SELECT count(*) FROM screening_batches") == 1
    assert scalar(database_url, "SELECT count(*) FROM kombu_message") >= 1


def test_a_savepoint_commit_sends_nothing_and_a_transaction_closed_without_commit_drops_its_messages(
        app, database_url: str) -> None:
    ctx = engine.engine_context(app)
    with app.app_context():
        with ctx.session() as session:
            session.execute(text("SELECT 1"))
            with session.begin_nested():  # a savepoint released: the outer transaction still decides
                ctx.publisher.publish(session, engine.TaskMessage(task_names.PING, (1,)))
            assert messages(database_url) == 0
            session.rollback()
            assert messages(database_url) == 0

        with ctx.session() as session:
            session.execute(text("SELECT 1"))
            ctx.publisher.publish(session, engine.TaskMessage(task_names.PING, (2,)))
        # closed with the transaction open (rolled back): dropped, and a later commit must not send it
        with ctx.session() as session:
            session.execute(text("SELECT 1"))
            session.commit()
        assert messages(database_url) == 0
