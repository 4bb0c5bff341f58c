"""How every litscreen process connects: the pooler mode, the direct (session) URL and per-connection settings.

``DATABASE_POOLER=pgbouncer-transaction`` means ``DATABASE_URL`` points at PgBouncer in transaction mode: pooled
connections carry no session state, so psycopg's server-side prepared statements are switched off
(``prepare_threshold=None``) on every connection. What needs a session — the broker's LISTEN connection and
migrations — connects to ``DATABASE_DIRECT_URL`` (default: ``DATABASE_URL``). Advisory locks are transaction-level
(``pg_advisory_xact_lock``), which a transaction pooler carries.

Every connection is named for the process type that opened it (``application_name`` =
``litscreen-<role>:<pid>``), so ``pg_stat_activity`` shows who holds what (``bench/bench_connections.py``).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

POOLER_NONE = "none"
POOLER_PGBOUNCER_TRANSACTION = "pgbouncer-transaction"  # one of app.config.DATABASE_POOLERS
APPLICATION_PREFIX = "litscreen-"

_state: dict[str, Any] = {"pooler": POOLER_NONE, "role": None, "installed": False}


def direct_database_url(configured: str | None, database_url: str) -> str:
    """``DATABASE_DIRECT_URL`` (normalised) if set, else ``database_url``: the session-level connection."""
    from app.db.url import normalise_database_url

    return normalise_database_url(configured) if configured else database_url


def set_process_role(role: str) -> None:
    """Name this process's future connections ``litscreen-<role>`` (e.g. ``pool-child`` after a fork)."""
    _state["role"] = role


def process_role() -> str:
    """The process type: web, worker, pool-child, maintenance, maintenance-child, beat, flower or cli."""
    if _state["role"]:
        return _state["role"]
    argv = list(sys.argv)
    if argv and "gunicorn" in argv[0]:  # the gunicorn script, or python -m gunicorn (.../gunicorn/__main__.py)
        return "web"
    for command in ("beat", "flower", "worker"):
        if command in argv:
            if command == "worker" and _consumes_only_maintenance(argv):
                return "maintenance"
            return command
    return "cli"


def _consumes_only_maintenance(argv: list[str]) -> bool:
    for index, arg in enumerate(argv):
        if arg in ("-Q", "--queues") and index + 1 < len(argv):
            return argv[index + 1] == "maintenance"
        if arg.startswith("--queues="):
            return arg.split("=", 1)[1] == "maintenance"
    return False


def pool_size_for_process(configured: int) -> int:
    """``DB_POOL_SIZE``, except in a maintenance worker: it runs one task at a time on one thread (the sweeper
    asks Celery its questions outside its transactions), so one connection is all it uses — which keeps the
    whole maintenance worker (main process + child) within 3 connections."""
    return 1 if process_role() in ("maintenance", "maintenance-child") else configured


def child_role() -> str:
    """The role of a prefork pool child of this worker process."""
    return "maintenance-child" if process_role() == "maintenance" else "pool-child"


def application_name(purpose: str | None = None) -> str:
    """``litscreen-<role>:<pid>[:<purpose>]`` for a connection opened now (purpose: app, broker, listen)."""
    return f"{APPLICATION_PREFIX}{process_role()}:{os.getpid()}{f':{purpose}' if purpose else ''}"[:63]


def psycopg_connect_kwargs(purpose: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.connect``: the connection's name and, behind a transaction pooler, no
    server-side prepared statements."""
    kwargs: dict[str, Any] = {"application_name": application_name(purpose)}
    if _state["pooler"] == POOLER_PGBOUNCER_TRANSACTION:
        kwargs["prepare_threshold"] = None
    return kwargs


def install_connection_settings(pooler: str) -> None:
    """Apply ``psycopg_connect_kwargs`` to every SQLAlchemy engine of this process (app, cache, result backend)."""
    _state["pooler"] = pooler
    if _state["installed"]:
        return
    event.listen(Engine, "do_connect", _on_connect)
    _state["installed"] = True


def name_app_connections(engine: Engine) -> None:
    """Name the application engine's connections ``...:app`` (a name set in the URL wins)."""
    event.listen(engine, "do_connect", _on_app_connect)


def _on_app_connect(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    if cparams.get("application_name") in (None, application_name()):  # unnamed, or named by _on_connect
        cparams["application_name"] = application_name("app")


def _on_connect(dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    if getattr(dialect, "driver", None) != "psycopg":
        return
    for key, value in psycopg_connect_kwargs().items():
        cparams.setdefault(key, value)
