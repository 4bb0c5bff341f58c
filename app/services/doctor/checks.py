"""The checks of ``litscreen doctor``, each a function returning :class:`Check` lines (✓ or ✗ with the fix).

Database checks take a SQLAlchemy engine (the CLI's own, or the web process's pool for ``/readyz``); fleet checks
take the Celery app and ask the workers over the broker (``inspect ping``, ``active_queues``, ``stats``). Nothing
here prints a password or an API key: URLs are redacted, provider answers are reduced to a status code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine, text

from app import task_names
from app.config import Settings
from app.services.doctor.database import DATABASE_ERRORS, DatabaseTarget, explain

logger = logging.getLogger(__name__)

BROKER_TABLES = ("kombu_queue", "kombu_message", "kombu_binding", "celery_taskmeta")
CONSUMED_QUEUES = ("celery", "maintenance")  # celeryconfig.task_queues


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


@dataclass
class Fleet:
    """What the workers said (empty when none answered)."""

    pongs: list[str] = field(default_factory=list)
    queues: dict[str, list[str]] = field(default_factory=dict)
    concurrency: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def consumers(self, queue: str) -> list[str]:
        return [name for name, queues in self.queues.items() if queue in queues]

    def is_maintenance_only(self, worker: str) -> bool:
        return self.queues.get(worker) == ["maintenance"]


def _failed(name: str, error: BaseException, target: DatabaseTarget) -> Check:
    line = explain(error, target) or f"{type(error).__name__} at {target.shown}"
    return Check(name, False, line)


def check_database(engine: Engine, target: DatabaseTarget) -> Check:
    """The database answers; which URL (redacted), embedded or not, and the server's version."""
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar()
    except DATABASE_ERRORS as exc:
        return _failed("database", exc, target)
    return Check("database", True, f"reachable: {target.shown}, PostgreSQL {version}")


def check_schema(engine: Engine, target: DatabaseTarget) -> Check:
    """The schema is at the newest migration."""
    from app.db.migrate import head_revision

    head = head_revision()
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar() is not None
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar() if exists else None
    except DATABASE_ERRORS as exc:
        return _failed("schema", exc, target)
    if current == head:
        return Check("schema", True, f"at head ({head})")
    if current is None:
        return Check("schema", False, "no schema yet", "run `litscreen db upgrade`")
    return Check("schema", False, f"at migration {current}, the code needs {head}", "run `litscreen db upgrade`")


def check_broker_tables(engine: Engine, target: DatabaseTarget) -> Check:
    """The broker's and the result backend's tables exist (the migrations create them)."""
    try:
        with engine.connect() as conn:
            missing = [name for name in BROKER_TABLES
                       if conn.execute(text("SELECT to_regclass(:t)"), {"t": name}).scalar() is None]
    except DATABASE_ERRORS as exc:
        return _failed("broker tables", exc, target)
    if missing:
        return Check("broker tables", False, f"missing: {', '.join(missing)}", "run `litscreen db upgrade`")
    return Check("broker tables", True, ", ".join(BROKER_TABLES))


def ask_fleet(celery_app: Any, timeout: float) -> Fleet:
    """Ask every worker over the broker: ping, the queues it consumes, its pool size."""
    fleet = Fleet()
    try:
        inspect = celery_app.control.inspect(timeout=timeout)
        fleet.pongs = sorted((inspect.ping() or {}).keys())
        if not fleet.pongs:
            return fleet
        inspect = celery_app.control.inspect(destination=fleet.pongs, timeout=timeout)
        for name, queues in (inspect.active_queues() or {}).items():
            fleet.queues[name] = sorted(queue.get("name", "?") for queue in queues or [])
        for name, stats in (inspect.stats() or {}).items():
            pool = (stats or {}).get("pool") or {}
            concurrency = pool.get("max-concurrency")
            if isinstance(concurrency, int):
                fleet.concurrency[name] = concurrency
    except Exception as exc:  # noqa: BLE001 - an unreachable broker is a failed check, not a crash
        fleet.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    return fleet


def check_workers(fleet: Fleet) -> Check:
    """Workers answer ``inspect ping``; which queues each consumes; every queue has a consumer."""
    if fleet.error and not fleet.pongs:
        return Check("workers", False, f"cannot ask the workers: {fleet.error}",
                     "check the broker (CELERY_BROKER_URL / DATABASE_URL)")
    if not fleet.pongs:
        return Check("workers", False, "no worker answers `celery inspect ping`",
                     "start workers: `celery -A tasks worker` and `celery -A tasks worker --queues maintenance` "
                     "(Procfile `worker`, `maintenance`; `make up` starts both)")
    described = []
    for name in fleet.pongs:
        queues = ",".join(fleet.queues.get(name, [])) or "?"
        concurrency = fleet.concurrency.get(name)
        described.append(f"{name} [{queues}{f'; concurrency {concurrency}' if concurrency else ''}]")
    lonely = [queue for queue in CONSUMED_QUEUES if not fleet.consumers(queue)]
    detail = f"{len(fleet.pongs)} answer ping: " + ", ".join(described)
    if lonely:
        return Check("workers", False, detail + f"; no worker consumes {', '.join(lonely)}",
                     "start a worker without --queues (it consumes every queue), or one with "
                     f"--queues {','.join(lonely)}")
    return Check("workers", True, detail)


def check_beat(engine: Engine, target: DatabaseTarget, settings: Settings) -> Check:
    """Beat is alive: the sweeper it schedules every SWEEP_INTERVAL_SECONDS ran recently (``maintenance_runs``)."""
    sweep = settings.engine.sweep_interval
    limit = settings.operations.beat_max_age or 3 * sweep + 60
    try:
        with engine.connect() as conn:
            rows = {row.job: row for row in conn.execute(text(
                "SELECT job, extract(epoch FROM now() - last_run_at) AS age, runs FROM maintenance_runs"))}
            waiting = conn.execute(text(
                "SELECT count(*) FROM kombu_message m JOIN kombu_queue q ON q.id = m.queue_id "
                "WHERE q.name = 'maintenance' AND m.visible")).scalar() or 0
    except DATABASE_ERRORS as exc:
        return _failed("beat", exc, target)
    fix = ("start beat: `celery -A tasks beat` (Procfile `beat`), and a worker consuming the maintenance queue"
           + (f" ({waiting} maintenance messages are waiting: beat sends, nobody runs them)" if waiting else ""))
    latest = rows.get(task_names.SWEEP)
    if latest is None:
        ran = ", ".join(sorted(rows)) or "nothing"
        return Check("beat", False, f"no sweeper run recorded yet (maintenance runs so far: {ran})", fix)
    age = float(latest.age)
    if age > limit:
        return Check("beat", False, f"last maintenance run (sweeper) {age:.0f} s ago; it runs every {sweep:g} s",
                     fix)
    others = ", ".join(f"{job.rsplit('.', 1)[-1]} {float(row.age):.0f} s ago" for job, row in sorted(rows.items())
                       if job != task_names.SWEEP)
    return Check("beat", True, f"sweeper ran {age:.0f} s ago (every {sweep:g} s)" + (f"; {others}" if others else ""))


def check_queues(engine: Engine, target: DatabaseTarget, fleet: Fleet) -> Check:
    """Queue depth and the oldest ready message's age per queue; messages nobody consumes are a failure."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT q.name, count(m.id) FILTER (WHERE m.visible) AS ready, "
                "count(m.id) FILTER (WHERE NOT m.visible) AS unacked, "
                "coalesce(extract(epoch FROM now() - min(m.timestamp AT TIME ZONE 'UTC') FILTER (WHERE m.visible)), 0)"
                " AS oldest FROM kombu_queue q LEFT JOIN kombu_message m ON m.queue_id = q.id "
                "WHERE q.name = ANY(:queues) GROUP BY q.name ORDER BY q.name"),
                {"queues": list(CONSUMED_QUEUES)}).all()
    except DATABASE_ERRORS as exc:
        return _failed("queues", exc, target)
    found = {row.name: row for row in rows}
    parts, stranded = [], []
    for queue in CONSUMED_QUEUES:
        row = found.get(queue)
        if row is None:
            parts.append(f"{queue}: empty")
            continue
        parts.append(f"{queue}: {row.ready} ready, {row.unacked} delivered"
                     + (f", oldest waiting {max(0.0, float(row.oldest)):.0f} s" if row.ready else ""))
        if row.ready and not fleet.consumers(queue) and not fleet.error:
            stranded.append(queue)
    if stranded:
        return Check("queues", False, "; ".join(parts) + f" — nobody consumes {', '.join(stranded)}",
                     "start a worker for those queues (see the workers line)")
    return Check("queues", True, "; ".join(parts))


def check_providers(settings: Settings, timeout: float, transport: httpx.BaseTransport | None = None) -> list[Check]:
    """Every provider of SCREENING_MODELS is configured (URL, key) and answers a tiny request (``GET /models``,
    else a one-token chat completion). The key is sent, never shown."""
    from app.llm.models import parse_screening_models
    from app.llm.providers import ProviderNotConfigured, provider_settings

    try:
        specs = parse_screening_models(settings.llm.screening_models)
    except ValueError as exc:
        return [Check("LLM providers", False, str(exc), "fix SCREENING_MODELS (provider:model, comma-separated)")]
    if not specs:
        return [Check("LLM providers", False, "SCREENING_MODELS is empty: starting a run is a 409",
                      "set SCREENING_MODELS, e.g. deepseek:deepseek-chat,qwen:qwen-plus (and the API keys)")]
    checks = []
    by_provider: dict[str, list[str]] = {}
    for spec in specs:
        by_provider.setdefault(spec.provider, []).append(spec.model)
    for name, models in by_provider.items():
        label = f"LLM provider {name}"
        try:
            provider = provider_settings(name, settings)
        except ProviderNotConfigured as exc:
            checks.append(Check(label, False, str(exc), f"set {name.upper()}_BASE_URL"))
            continue
        if not provider.api_key and name != "sim":
            checks.append(Check(label, False, f"no API key for {provider.base_url}",
                                f"set {name.upper()}_API_KEY"))
            continue
        checks.append(_probe_provider(label, name, provider.base_url, provider.api_key, models,
                                      min(timeout, provider.timeout), transport))
    return checks


def _probe_provider(label: str, name: str, base_url: str, api_key: str | None, models: list[str], timeout: float,
                    transport: httpx.BaseTransport | None) -> Check:
    headers = {"User-Agent": "litscreen-doctor"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    key_fix = f"check {name.upper()}_API_KEY" if api_key else f"set {name.upper()}_API_KEY"
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport) as client:
            response = client.get("/models")
            if response.status_code in (404, 405):  # no model list here: one token of chat instead
                response = client.post("/chat/completions", json={
                    "model": models[0], "max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]})
    except httpx.HTTPError as exc:
        return Check(label, False, f"cannot reach {base_url}: {type(exc).__name__}",
                     f"check {name.upper()}_BASE_URL and the network (is the service up?)")
    if response.status_code in (401, 403):
        return Check(label, False, f"{base_url} refused the key (HTTP {response.status_code})", key_fix)
    if response.status_code >= 400:
        return Check(label, False, f"{base_url} answered HTTP {response.status_code}",
                     f"check {name.upper()}_BASE_URL and the provider's status page")
    listed = _listed_models(response)
    unknown = [model for model in models if listed and model not in listed]
    detail = f"{base_url} answers (models {', '.join(models)})"
    if unknown:
        return Check(label, False, f"{base_url} answers but does not list {', '.join(unknown)}",
                     "fix the model names in SCREENING_MODELS")
    return Check(label, True, detail)


def _listed_models(response: httpx.Response) -> set[str]:
    try:
        body = response.json()
    except ValueError:
        return set()
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, list):
        return set()
    return {str(item.get("id")) for item in data if isinstance(item, Mapping) and item.get("id")}


def fleet_connection_bound(fleet: Fleet, web_concurrency: int, pool_size: int = 2) -> tuple[int, str]:
    """The README's connection arithmetic for the workers that answered: (bound, the sum written out).

    A worker: main 2 (broker, LISTEN) + ``pool_size`` per pool child; the maintenance worker 3 (main 2 + a child
    on a pool of 1); beat 1; Flower 2; a web worker ``pool_size`` (publish-only processes borrow their broker
    statements from the application pool)."""
    terms, total = [], 0
    for worker in fleet.pongs:
        concurrency = fleet.concurrency.get(worker, 1)
        if fleet.is_maintenance_only(worker):
            terms.append(f"3 ({worker}, maintenance)")
            total += 3
        else:
            terms.append(f"(2 + {pool_size}·{concurrency}) ({worker})")
            total += 2 + pool_size * concurrency
    terms += ["1 (beat)", "2 (Flower)", f"{pool_size}·{web_concurrency} (web)"]
    total += 1 + 2 + pool_size * web_concurrency
    return total, " + ".join(terms) + f" = {total}"


def check_connections(engine: Engine, target: DatabaseTarget, fleet: Fleet, settings: Settings) -> Check:
    """Connections in use and the fleet's bound against what ``max_connections`` leaves after reserved slots."""
    try:
        with engine.connect() as conn:
            limit = int(conn.execute(text("SHOW max_connections")).scalar() or 0)
            reserved = int(conn.execute(text("SHOW superuser_reserved_connections")).scalar() or 0)
            in_use = int(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")).scalar() or 0)
    except DATABASE_ERRORS as exc:
        return _failed("connections", exc, target)
    usable = max(limit - reserved, 1)
    ratio = settings.operations.connections_warn_ratio
    bound, arithmetic = fleet_connection_bound(fleet, settings.operations.web_concurrency,
                                               settings.database.pool_size)
    detail = (f"{in_use} in use of max_connections {limit} ({reserved} reserved for superusers, {usable} usable); "
              f"fleet bound {arithmetic}")
    if settings.database.pooler != "none":
        detail += " (behind PgBouncer the server sees its pool plus one LISTEN connection per consumer instead)"
    fix = (f"raise max_connections to at least {bound + reserved + 5} (bound + reserved + 5 for operators), lower "
           "WORKER_CONCURRENCY / WEB_CONCURRENCY, or put PgBouncer in front (README: Connection budget, PgBouncer)")
    if in_use >= ratio * usable:
        return Check("connections", False, f"near the limit: {detail}", fix)
    if bound > usable and settings.database.pooler == "none":
        return Check("connections", False, f"the fleet can exceed the limit: {detail}", fix)
    return Check("connections", True, detail)


def check_pooler(settings: Settings) -> Check:
    """DATABASE_POOLER and DATABASE_DIRECT_URL agree, and both URLs reach the same database."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from app.db.url import normalise_database_url, redact

    database = settings.database
    pooled = database.pooler == "pgbouncer-transaction"
    direct = normalise_database_url(database.direct_url) if database.direct_url else None
    url = normalise_database_url(database.url) if database.url else None
    if pooled and (direct is None or direct == url):
        return Check("pooler", False, "DATABASE_POOLER=pgbouncer-transaction but no separate DATABASE_DIRECT_URL",
                     "set DATABASE_DIRECT_URL to a session-level URL of the same database (LISTEN/NOTIFY, migrations "
                     "cannot go through a transaction pooler)")
    if not pooled and direct is not None and direct != url:
        return Check("pooler", False, "DATABASE_DIRECT_URL is set but DATABASE_POOLER=none",
                     "set DATABASE_POOLER=pgbouncer-transaction if DATABASE_URL goes through PgBouncer in transaction "
                     "mode; otherwise unset DATABASE_DIRECT_URL")
    if direct is None or url is None:
        return Check("pooler", True, "none: DATABASE_URL carries everything")
    identities = []
    for candidate, prepare in ((url, not pooled), (direct, True)):
        args = {} if prepare else {"prepare_threshold": None}
        engine = create_engine(candidate, poolclass=NullPool, connect_args={"connect_timeout": 5, **args})
        try:
            with engine.connect() as conn:
                identities.append(tuple(conn.execute(text(
                    "SELECT (SELECT system_identifier FROM pg_control_system()), current_database()")).one()))
        except DATABASE_ERRORS as exc:
            name = "DATABASE_URL" if candidate == url else "DATABASE_DIRECT_URL"
            return Check("pooler", False, f"{name} ({redact(candidate)}) does not answer: "
                         f"{type(getattr(exc, 'orig', exc)).__name__}", f"fix {name}")
        finally:
            engine.dispose()
    if identities[0] != identities[1]:
        return Check("pooler", False, "DATABASE_URL and DATABASE_DIRECT_URL reach different databases",
                     "point DATABASE_DIRECT_URL at the same database as DATABASE_URL (directly, not via PgBouncer)")
    return Check("pooler", True, f"{database.pooler}: DATABASE_URL ({redact(url)}) and DATABASE_DIRECT_URL "
                                 f"({redact(direct)}) reach the same database")
