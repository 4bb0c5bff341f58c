"""``litscreen doctor``: checks a stack and explains each finding — ✓, or ✗ with the fix.

:func:`diagnose` runs every check in order (database, schema, broker tables, workers, beat, queues, LLM
providers, connections, pooler) and returns the lines; the CLI prints them and exits 0 only when all pass.
``/readyz`` runs :func:`readiness_checks`, the ones that make sense for a web process. The individual checks live
in :mod:`.checks`; the database's one-line error explanations (also used by every CLI command) in :mod:`.database`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.services.doctor.checks import (
    Check,
    Fleet,
    ask_fleet,
    check_beat,
    check_broker_tables,
    check_connections,
    check_database,
    check_pooler,
    check_providers,
    check_queues,
    check_schema,
    check_workers,
)
from app.services.doctor.database import DatabaseProblem, DatabaseTarget, database_target

__all__ = ["Check", "DatabaseProblem", "diagnose", "readiness_checks"]

logger = logging.getLogger(__name__)

AFTER_DATABASE = ("schema", "broker tables", "workers", "beat", "queues", "connections")


def doctor_engine(target: DatabaseTarget, settings: Settings) -> Engine:
    """A one-connection-at-a-time engine for the checks (no pool left behind)."""
    from app.db.connections import psycopg_connect_kwargs

    connect_args: dict[str, Any] = {"connect_timeout": 5, **psycopg_connect_kwargs("doctor")}
    if settings.database.pooler == "pgbouncer-transaction":
        connect_args["prepare_threshold"] = None
    return create_engine(target.url, poolclass=NullPool, connect_args=connect_args)


def readiness_checks(engine: Engine, target: DatabaseTarget) -> list[Check]:
    """What a web process needs to serve: the database answers, its schema is at head, the broker tables exist."""
    first = check_database(engine, target)
    if not first.ok:
        return [first]
    return [first, check_schema(engine, target), check_broker_tables(engine, target)]


def diagnose(settings: Settings, celery_app: Callable[[], Any], timeout: float | None = None) -> list[Check]:
    """Every check, in order. ``celery_app`` builds the configured Celery app (only once the database answers)."""
    timeout = timeout if timeout is not None else settings.operations.doctor_timeout
    try:
        target = database_target(settings.database, start_embedded=False)
    except DatabaseProblem as exc:
        return [Check("database", False, str(exc)), *_not_checked(), *check_providers(settings, timeout),
                check_pooler(settings)]
    engine = doctor_engine(target, settings)
    try:
        checks = readiness_checks(engine, target)
        if not checks[0].ok:
            return checks + _not_checked() + check_providers(settings, timeout) + [check_pooler(settings)]
        fleet = Fleet()
        try:
            fleet = ask_fleet(celery_app(), timeout)
        except Exception as exc:  # noqa: BLE001 - a broken Celery configuration is one failed line
            fleet.error = f"{type(exc).__name__}: {exc}"[:300]
        checks += [check_workers(fleet), check_beat(engine, target, settings), check_queues(engine, target, fleet)]
        checks += check_providers(settings, timeout)
        checks += [check_connections(engine, target, fleet, settings), check_pooler(settings)]
        return checks
    finally:
        engine.dispose()


def _not_checked() -> list[Check]:
    return [Check(name, False, "not checked: the database is unreachable") for name in AFTER_DATABASE]
