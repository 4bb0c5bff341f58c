"""Provision PostgreSQL for a test session: a server (local or embedded) and a fresh, migrated database."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

LOCAL_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

# Every table that tests may fill; truncated between tests.
DATA_TABLES = (
    "fulltexts", "screening_results", "screening_batches", "screening_tasks", "literature", "projects",
    "api_tokens", "users", "app_cache", "app_cache_counters", "llm_rate_slots", "llm_inflight", "metric_counters",
    "maintenance_runs", "kombu_message",
    "kombu_binding", "kombu_queue",
    "celery_taskmeta", "celery_tasksetmeta",
)


def conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def server_answers(url: str) -> bool:
    """Whether a PostgreSQL server answers at ``url`` within two seconds."""
    try:
        with psycopg.connect(conninfo(url), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def admin_url() -> str:
    """TEST_DATABASE_URL, else the local server on 127.0.0.1:5432, else an embedded server started now."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        from app.db.url import normalise_database_url

        return normalise_database_url(configured)
    local = os.environ.get("LITSCREEN_TEST_LOCAL_URL", LOCAL_DEFAULT)
    if server_answers(local):
        return local
    from app.db.embedded import embedded_server_url

    instance = Path(os.environ.get("LITSCREEN_TEST_EMBEDDED_DIR") or Path(tempfile.gettempdir()) / "litscreen-test-pg")
    instance.mkdir(exist_ok=True)
    return embedded_server_url(instance)


def create_database(admin: str) -> str:
    """Create a uniquely named database on the admin server and return its URL."""
    name = f"litscreen_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def drop_database(admin: str, url: str) -> None:
    """Drop the database at ``url``, disconnecting whoever is still on it."""
    name = make_url(url).database
    with psycopg.connect(conninfo(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate_all(url: str) -> None:
    """Empty every data table (identities restarted)."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE")
