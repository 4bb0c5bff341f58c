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
