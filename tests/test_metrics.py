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
    "litscreen_llm_cost", "litscreen_cache_entries", "litscreen_cache_expired_entries",
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


def test_metrics_names_and_values_follow_the_work(app, client, database_url: str, project_id: int) -> None:
    before = scrape(client)
    assert NAMES <= before[("", ())]

    # broker: a message waiting in a queue nobody consumes
    app.extensions["celery"].send_task(task_names.PING, args=[1], queue="metrics-probe", ignore_result=True)
    # screening: a running task with a recovered batch whose lease expired, two results with model decisions
    decisions = [
        {"model": "sim:a", "provider": "sim", "decision": "include", "prompt_tokens": 100, "completion_tokens": 20,
         "cost": 0.5, "cached": False, "error": None},
        {"model": "sim:b", "provider": "sim", "decision": None, "prompt_tokens": 80, "completion_tokens": 0,
         "cost": 0.25, "cached": False, "error": "timeout"},
    ]
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        session = db.session()
        task_id = session.execute(text(
            "INSERT INTO screening_tasks (project_id, owner_id, task_type, status, total_items, total_batches, "
            "batch_size, model_config, processed_items, success_items, failed_items, conflict_items, prompt_tokens, "
            "completion_tokens, cost_estimate, attempt, cancel_requested, created_at, updated_at) VALUES "
            "(:p, (SELECT owner_id FROM projects WHERE id = :p), 'title_abstract', 'running', 2, 1, 10, '{}', "
            "0, 0, 0, 0, 0, 0, 0, 1, false, now(), now()) "
            "RETURNING id"), {"p": project_id}).scalar_one()
        session.execute(text(
            "INSERT INTO screening_batches (task_id, batch_index, item_ids, size, status, cursor, attempts, "
            "lease_expires_at) VALUES (:t, 0, '{}', 2, 'running', 0, 3, now() - interval '1 minute')"),
            {"t": task_id})
        for n in range(2):
            literature_id = session.execute(text(
                "INSERT INTO literature (project_id, title, authors, keywords, source_format, dedup_key, created_at) "
                "VALUES (:p, :t, '{}', '{}', 'json', :k, now()) RETURNING id"),
                {"p": project_id, "t": f"record {n}", "k": f"key {n}"}).scalar_one()
            session.execute(text(
                "INSERT INTO screening_results (task_id, item_id, literature_id, batch_index, decisions, has_conflict, "
                "manual_review_required, status, prompt_tokens, completion_tokens, cost_estimate, duration_ms, "
                "created_at) VALUES (:t, :l, :l, 0, CAST(:d AS jsonb), false, false, 'success', 0, 0, 0, 1500, now())"),
                {"t": task_id, "l": literature_id, "d": json.dumps(decisions)})
        session.execute(text(
            "INSERT INTO celery_taskmeta (task_id, status, name, result, date_done) VALUES "
            "('batch-1', 'SUCCESS', :n, CAST(:r AS bytea), now())"),
            {"n": task_names.SCREEN_BATCH, "r": json.dumps({"status": "done", "checkpoint_ms": [3.0, 40.0]})})
        session.execute(text("INSERT INTO app_cache (key, value, expires_at, created_at) "
                             "VALUES ('asl:llm:x', '1', now() - interval '1 second', now())"))
        session.commit()

    after = scrape(client)
    assert after[("litscreen_broker_queue_depth", (("queue", "metrics-probe"),))] == 1
    assert query(database_url, "SELECT count(*) FROM kombu_message")[0][0] == 1
    assert after[("litscreen_screening_tasks", (("status", "running"),))] == 1
    assert after[("litscreen_batch_leases_expired", ())] == 1
    assert after[("litscreen_batch_recoveries_total", ())] == 2
    assert after[("litscreen_records_processed_total", (("status", "success"),))] == 2
    sim_a = (("model", "sim:a"), ("provider", "sim"))
    sim_b = (("model", "sim:b"), ("provider", "sim"))
    assert after[("litscreen_llm_calls_total", sim_a)] == 2
    assert after[("litscreen_llm_errors_total", sim_b)] == 2
    assert after[("litscreen_llm_tokens_total", (("kind", "prompt"), *sim_a))] == 200
    assert after[("litscreen_llm_cost_total", sim_b)] == 0.5
    assert after[("litscreen_record_screening_seconds_count", ())] == 2
    assert after[("litscreen_record_screening_seconds_bucket", (("le", "2.5"),))] == 2
    assert after[("litscreen_checkpoint_commit_seconds_count", ())] == 2
    assert after[("litscreen_checkpoint_commit_seconds_bucket", (("le", "0.005"),))] == 1
    assert after[("litscreen_cache_expired_entries", ())] == before[("litscreen_cache_expired_entries", ())] + 1


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
