"""The demo's private stack: its database on the embedded server, its user and token, the environment and
commands of its children (simulator, API, workers, beat, Flower), and how it turns signals into one cleanup."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from rich.console import Console

from app.processes import ProcessStackError

logger = logging.getLogger(__name__)


class DemoError(ProcessStackError):
    """The demo cannot go on; the message says why and where to look."""


DEMO_DATABASE = "litscreen_demo"
DEMO_USER = "demo"
SIMULATED_MODELS = ("model-a", "model-b")
SCREENING_MODELS = ",".join(f"sim:{model}" for model in SIMULATED_MODELS)
# Recovery settings for the demo: short, so --kill-a-worker shows a resumed batch within seconds.
DEMO_RECOVERY_ENV = {"LEASE_TTL_SECONDS": "10", "SWEEP_INTERVAL_SECONDS": "3", "CHECKPOINT_EVERY": "5"}
# Variables that must not leak from the caller's shell into the demo's private stack.
STRIPPED_ENV = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SCREENING_MODELS", "SIM_BASE_URL",
                "LLM_CACHE", "CACHE_BACKEND")


# -- the embedded server and the demo database -------------------------------------------------------------

def prepare_database(instance: Path) -> tuple[str, str]:
    """Start (or reuse) the embedded server; drop and recreate the demo database; migrate it.

    Returns (database URL, server version).
    """
    import psycopg

    from app.db.embedded import embedded_server_url
    from app.db.migrate import upgrade

    admin_url = embedded_server_url(instance)
    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        version = str(row[0]) if row else "unknown"
        conn.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
    database_url = embedded_server_url(instance, DEMO_DATABASE)
    upgrade(database_url)
    return database_url, version


def release_embedded_server(instance: Path) -> None:
    """Drop this process's handle on the embedded server; stop it if no live process holds one any more.

    The wheel stops the server when its last handle goes; a handle left by a process that was ``kill -9``ed
    would keep it running forever, so dead holders are ignored here.
    """
    import psutil

    from app.db import embedded

    server = embedded._server  # the handle this process took in embedded_server_url
    if server is not None:
        server.cleanup()
        embedded._server = None
    pgdata = instance / "pgdata"
    try:
        holders = json.loads((pgdata / ".handle_pids.json").read_text() or "[]")
    except (OSError, ValueError):
        holders = []
    if not any(psutil.pid_exists(pid) for pid in holders) and (pgdata / "postmaster.pid").exists():
        embedded.stop_embedded(instance)


def create_demo_token(database_url: str) -> str:
    """Create the demo user and an API token (in this process, through the services)."""
    from app import create_app
    from app.extensions import db
    from app.services.users import create_token, create_user

    app = create_app({"DATABASE_URL": database_url})
    try:
        with app.app_context():
            create_user(db.session(), DEMO_USER, is_admin=True)  # the demo reads fleet-wide cache stats
            return create_token(db.session(), DEMO_USER)
    finally:
        app.extensions["litscreen_db_engine"].dispose()


# -- child processes ---------------------------------------------------------------------------------------

def child_env(database_url: str, simulator_url: str, instance: Path) -> dict[str, str]:
    """The environment of every child: the demo database, the simulated models, short recovery timings."""
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED_ENV}
    env.update(DEMO_RECOVERY_ENV)
    env.update({
        "DATABASE_URL": database_url,
        "SCREENING_MODELS": SCREENING_MODELS,
        "SIM_BASE_URL": simulator_url,
        "CACHE_BACKEND": "postgres",
        "LLM_CACHE": "on",
        "LITSCREEN_INSTANCE_DIR": str(instance),
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
    })
    return env


def litscreen_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def worker_command(index: int, concurrency: int) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
            "--hostname", f"demo-worker-{index}@%h", "--concurrency", str(concurrency),
            "--prefetch-multiplier", "1", "--without-mingle", "--without-gossip"]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


# -- signals -----------------------------------------------------------------------------------------------

@contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP behave like Ctrl-C inside the block, so the same cleanup runs for all three."""

    def _interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    # Ctrl-C must work even when the caller started us with SIGINT ignored (a background job of a script)
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def shielded_from_interrupts(console: Console) -> Iterator[None]:
    """While cleaning up, a second Ctrl-C only says that cleanup is running."""

    def _say(_signum: int, _frame: object) -> None:
        console.print("[yellow]stopping the demo's processes, one moment…[/yellow]")

    previous = {sig: signal.signal(sig, _say) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
