"""``GET /metrics``: the documented names are exposed, and their values follow the rows they are computed from."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from app import task_names
from tests.support.broker import query

NAMES = {
    "litscreen_screening_tasks", "litscreen_screening_batches", "litscreen_records_processed",
    "litscreen_batch_leases_expired", "litscreen_batch_recoveries", "litscreen_batches_recovered",
    "litscreen_record_screening_seconds", "litscreen_checkpoint_commit_seconds",
    "litscreen_llm_calls", "litscreen_llm_cached_answers", "litscreen_llm_errors", "litscreen_llm_tokens",
    "litscreen_llm_cost_usd", "litscreen_cache_entries", "litscreen_cache_expired_entries",
    "litscreen_broker_queue_depth", "litscreen_broker_queue_unacked", "litscreen_broker_oldest_message_age_seconds",
    "litscreen_celery_results",
}


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Samples of one scrape as ``{(sample name, sorted labels): value}``, plus the family names under ''."""
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: dict = {}
    families = set()
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        families.add(family.name)
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    samples[("", ())] = families
    return samples


def _running_task_with_results(app, project_id: int, decisions: list[dict], records: int = 2) -> int:
    """A task whose one batch was delivered twice before (so this claim is a recovery) and whose checkpoint wrote
    ``records`` results with ``decisions``, through the engine's own claim and checkpoint statements."""
    from sqlalchemy import text

    from app.config import EngineSettings
    from app.extensions import db
    from app.services.engine import claim_batch, engine_context
    from app.services.engine.checkpoint import write_checkpoint
    from app.services.engine.leases import ClaimedBatch

    with app.app_context():
        session = db.session()
        task_id = session.execute(text(
            "INSERT INTO screening_tasks (project_id, owner_id, task_type, status, total_items, total_batches, "
            "batch_size, model_config, processed_items, success_items, failed_items, conflict_items, prompt_tokens, "
            "completion_tokens, cost_estimate, attempt, cancel_requested, created_at, updated_at) VALUES "
            "(:p, (SELECT owner_id FROM projects WHERE id = :p), 'title_abstract', 'running', :n, 1, 10, '{}', "
            "0, 0, 0, 0, 0, 0, 0, 1, false, now(), now()) "
            "RETURNING id"), {"p": project_id, "n": records}).scalar_one()
        literature_ids = []
        for n in range(records):
            literature_ids.append(session.execute(text(
                "INSERT INTO literature (project_id, title, authors, keywords, source_format, dedup_key, created_at) "
                "VALUES (:p, :t, '{}', '{}', 'json', :k, now()) RETURNING id"),
                {"p": project_id, "t": f"record {task_id}-{n}", "k": f"key {task_id}-{n}"}).scalar_one())
        session.execute(text(
            "INSERT INTO screening_batches (task_id, batch_index, item_ids, size, status, cursor, attempts) "
            "VALUES (:t, 0, :ids, :n, 'pending', 0, 2)"), {"t": task_id, "ids": literature_ids, "n": records})
        session.commit()
        claim = claim_batch(engine_context(app), task_id, 0, "metrics-test")
        assert isinstance(claim, ClaimedBatch), claim
        rows = [{"item_id": lid, "literature_id": lid, "decisions": decisions, "final_decision": "include",
                 "status": "success", "duration_ms": 1500} for lid in literature_ids]
        with db.engine.begin() as conn:
            # the delivery's previous checkpoint took 3 ms (this one reports it)
            write_checkpoint(conn, claim, rows, records, None, EngineSettings.from_config(app.config), 3.0)
            conn.execute(text("UPDATE screening_batches SET lease_expires_at = now() - interval '1 minute' "
                              "WHERE task_id = :t"), {"t": task_id})
    return task_id


DECISIONS = [
    {"model": "sim:a", "provider": "sim", "decision": "include", "prompt_tokens": 100, "completion_tokens": 20,
     "cost": 0.5, "cached": False, "error": None},
    {"model": "sim:b", "provider": "sim", "decision": None, "prompt_tokens": 80, "completion_tokens": 0,
     "cost": 0.25, "cached": False, "error": "timeout"},
]


def test_metrics_names_and_values_follow_the_work(app, client, database_url: str, project_id: int) -> None:
    before = scrape(client)
    assert NAMES <= before[("", ())]

    # broker: a message waiting in a queue nobody consumes
    app.extensions["celery"].send_task(task_names.PING, args=[1], queue="metrics-probe", ignore_result=True)
    # screening: a running task with a recovered batch whose lease expired, two results with model decisions
    _running_task_with_results(app, project_id, DECISIONS)
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        session = db.session()
        session.execute(text("INSERT INTO app_cache (key, value, expires_at, created_at) "
                             "VALUES ('asl:llm:x', '1', now() - interval '1 second', now())"))
        session.commit()

    after = scrape(client)
    assert after[("litscreen_broker_queue_depth", (("queue", "metrics-probe"),))] == 1
    assert query(database_url, "SELECT count(*) FROM kombu_message")[0][0] == 1
    assert after[("litscreen_screening_tasks", (("status", "running"),))] == 1
    assert after[("litscreen_screening_tasks", (("status", "paused"),))] == 0  # every status, zero included
    assert after[("litscreen_screening_batches", (("status", "failed"),))] == 0
    assert after[("litscreen_batch_leases_expired", ())] == 1
    assert after[("litscreen_batch_recoveries_total", ())] == 1
    assert after[("litscreen_batches_recovered", ())] == 1
    assert after[("litscreen_records_processed_total", (("status", "success"),))] == 2
    assert after[("litscreen_records_processed_total", (("status", "failed"),))] == 0
    sim_a = (("model", "sim:a"), ("provider", "sim"))
    sim_b = (("model", "sim:b"), ("provider", "sim"))
    assert after[("litscreen_llm_calls_total", sim_a)] == 2
    assert after[("litscreen_llm_errors_total", sim_b)] == 2
    assert after[("litscreen_llm_tokens_total", (("kind", "prompt"), *sim_a))] == 200
    assert after[("litscreen_llm_cost_usd_total", sim_b)] == 0.5
    assert after[("litscreen_record_screening_seconds_count", ())] == 2
    assert after[("litscreen_record_screening_seconds_bucket", (("le", "2.5"),))] == 2
    assert after[("litscreen_record_screening_seconds_sum", ())] == 3.0
    assert after[("litscreen_checkpoint_commit_seconds_count", ())] == 1
    assert after[("litscreen_checkpoint_commit_seconds_bucket", (("le", "0.005"),))] == 1
    assert after[("litscreen_checkpoint_commit_seconds_sum", ())] == 0.003
    assert after[("litscreen_cache_expired_entries", ())] == before[("litscreen_cache_expired_entries", ())] + 1


def test_counters_do_not_go_down_when_a_project_is_deleted(app, client, auth, project_id: int) -> None:
    _running_task_with_results(app, project_id, DECISIONS, records=3)
    with_project = scrape(client)
    counters = {key: value for key, value in with_project.items()
                if key[0].endswith(("_total", "_count", "_sum", "_bucket"))}
    assert counters[("litscreen_records_processed_total", (("status", "success"),))] == 3

    assert client.delete(f"/api/v1/asl/projects/{project_id}", headers=auth).status_code == 204
    after_delete = scrape(client)
    assert counters[("litscreen_checkpoint_commit_seconds_count", ())] == 1
    for key, value in counters.items():
        assert after_delete[key] >= value, key
    assert after_delete[("litscreen_screening_tasks", (("status", "running"),))] == 0  # a gauge may go down


def test_metrics_need_the_bearer_token_when_the_operator_sets_one(app, client, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "scrape-secret")
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.get_json()["code"] == 401
    assert "scrape-secret" not in refused.get_data(as_text=True)
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    allowed = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert allowed.status_code == 200 and "litscreen" in allowed.get_data(as_text=True)
    monkeypatch.setitem(app.config, "METRICS_TOKEN", None)
    assert client.get("/metrics").status_code == 200


def test_the_migration_fills_the_counters_from_the_rows_that_exist(admin_database_url: str) -> None:
    import psycopg

    from app.db.migrate import upgrade
    from tests.support import database
    from tests.support.database import conninfo

    url = database.create_database(admin_database_url)
    try:
        upgrade(url, "0006")
        with psycopg.connect(conninfo(url), autocommit=True) as conn:
            user = conn.execute("INSERT INTO users (name, is_admin, created_at) VALUES ('u', false, now()) "
                                "RETURNING id").fetchone()[0]
            project = conn.execute("INSERT INTO projects (name, owner_id, picos, created_at, updated_at) "
                                   "VALUES ('p', %s, '{}', now(), now()) RETURNING id", (user,)).fetchone()[0]
            task = conn.execute(
                "INSERT INTO screening_tasks (project_id, owner_id, task_type, status, total_items, total_batches, "
                "batch_size, model_config, processed_items, success_items, failed_items, conflict_items, "
                "prompt_tokens, completion_tokens, cost_estimate, attempt, cancel_requested, created_at, updated_at) "
                "VALUES (%s, %s, 'title_abstract', 'completed', 3, 1, 10, '{}', 3, 3, 0, 0, 0, 0, 0, 1, false, "
                "now(), now()) RETURNING id", (project, user)).fetchone()[0]
            conn.execute("INSERT INTO screening_batches (task_id, batch_index, item_ids, size, status, cursor, "
                         "attempts) VALUES (%s, 0, '{}', 3, 'done', 3, 3)", (task,))
            for item in range(3):
                conn.execute(
                    "INSERT INTO screening_results (task_id, item_id, batch_index, decisions, has_conflict, "
                    "manual_review_required, status, prompt_tokens, completion_tokens, cost_estimate, duration_ms, "
                    "created_at) VALUES (%s, %s, 0, %s, false, false, 'success', 0, 0, 0, 700, now())",
                    (task, item, json.dumps(DECISIONS)))
        upgrade(url)
        counters = {(metric, json.dumps(labels, sort_keys=True)): value for metric, labels, value in
                    query(url, "SELECT metric, labels, value FROM metric_counters")}
        assert counters[("records_processed", '{"status": "success"}')] == 3
        assert counters[("llm_cost_usd", '{"model": "sim:b", "provider": "sim"}')] == 0.75
        assert counters[("record_screening_seconds_bucket", '{"bucket": 1}')] == 3
        assert counters[("batch_recoveries", "{}")] == 2
    finally:
        database.drop_database(admin_database_url, url)
