"""Alembic owns the schema: upgrade → downgrade → upgrade works, and models match migrations."""

from __future__ import annotations

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, pool

from app.db.migrate import downgrade, head_revision, upgrade
from app.models import Base
from tests.support import database


def test_upgrade_downgrade_upgrade_on_a_fresh_database(admin_database_url: str) -> None:
    url = database.create_database(admin_database_url)
    try:
        upgrade(url)
        engine = create_engine(url, poolclass=pool.NullPool)
        tables = set(inspect(engine).get_table_names())
        assert {"users", "projects", "literature", "screening_tasks", "screening_batches", "screening_results",
                "app_cache", "kombu_queue", "kombu_message", "kombu_binding", "celery_taskmeta",
                "celery_tasksetmeta"} <= tables

        downgrade(url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        with psycopg.connect(database.conninfo(url)) as conn:
            sequences = conn.execute("SELECT count(*) FROM pg_sequences WHERE sequencename LIKE '%_sequence'")
            assert sequences.fetchone()[0] == 0

        upgrade(url)
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == head_revision()
        engine.dispose()
    finally:
        database.drop_database(admin_database_url, url)


def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_the_engine_migration_backfills_owner_item_and_the_machines_decision(admin_database_url: str) -> None:
    """Rows written before ``0002_engine``: ``item_id`` from the record, ``owner_id`` from the project, and
    ``llm_decision`` recomputed under the task's rule for reviewed rows (a review overwrote final_decision)."""
    url = database.create_database(admin_database_url)
    try:
        upgrade(url, "0005")
        with psycopg.connect(database.conninfo(url), autocommit=True) as conn:
            user = conn.execute("INSERT INTO users (name, created_at) VALUES ('u', now()) "
                                "RETURNING id").fetchone()[0]
            project = conn.execute("INSERT INTO projects (name, picos, owner_id, created_at, updated_at) VALUES "
                                   "('p', '{}', %s, now(), now()) RETURNING id", (user,)).fetchone()[0]
            task = conn.execute(
                "INSERT INTO screening_tasks (project_id, task_type, status, total_items, total_batches, batch_size, "
                "model_config, processed_items, success_items, failed_items, conflict_items, prompt_tokens, "
                "completion_tokens, cost_estimate, attempt, cancel_requested, created_at, updated_at) VALUES "
                "(%s, 'title_abstract', 'completed', 2, 1, 10, '{\"decision_rule\": \"majority\"}', 2, 2, 0, 1, 0, 0, "
                "0, 1, false, now(), now()) RETURNING id", (project,)).fetchone()[0]
            decisions = ('[{"model": "a", "decision": "include"}, {"model": "b", "decision": "include"}, '
                         '{"model": "c", "decision": "exclude"}]')
            for n, (final, review) in enumerate((("exclude", "exclude"), ("conflict", None))):
                record = conn.execute(
                    "INSERT INTO literature (project_id, title, authors, keywords, source_format, dedup_key, "
                    "created_at) VALUES (%s, %s, '{}', '{}', 'json', %s, now()) RETURNING id",
                    (project, f"r{n}", f"k{n}")).fetchone()[0]
                conn.execute(
                    "INSERT INTO screening_results (task_id, literature_id, batch_index, decisions, final_decision, "
                    "has_conflict, manual_review_required, status, prompt_tokens, completion_tokens, cost_estimate, "
                    "review_decision, created_at) VALUES (%s, %s, 0, %s, %s, true, false, 'success', 0, 0, 0, %s, "
                    "now())", (task, record, decisions, final, review))
        upgrade(url)
        with psycopg.connect(database.conninfo(url), autocommit=True) as conn:
            rows = conn.execute("SELECT item_id = literature_id, review_decision, final_decision, llm_decision "
                                "FROM screening_results ORDER BY id").fetchall()
            owner = conn.execute("SELECT owner_id FROM screening_tasks WHERE id = %s", (task,)).fetchone()[0]
        # reviewed: 2 of 3 models include → the machine said include (the old export said "conflict")
        assert rows == [(True, "exclude", "exclude", "include"), (True, None, "conflict", "conflict")]
        assert owner == user
    finally:
        database.drop_database(admin_database_url, url)
