"""litscreen's configuration: one typed, validated object, and the only reader of the environment.

:func:`load_settings` reads ``os.environ`` (and a mapping of overrides: tests pass their own to ``create_app``)
into :class:`Settings`, a frozen tree of groups (database, Celery and broker, beat, engine, LLM and providers,
cache, imports). Every variable is declared once below with its type, default and bounds; a bad value stops the
process at start with a :class:`ConfigError` naming the variable. ``create_app`` keeps the values in
``app.config`` under the variable names (Flask's pattern, so tests can change one), and :meth:`Settings.of`
reads them back as the typed object; ``celeryconfig.settings_for`` builds Celery's settings from the same object.
The README's configuration table lists the same variables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.config_fields import ConfigError, as_variables, env, group, is_set, parse
from app.llm.decision import DECISION_RULES

__all__ = ["ConfigError", "Settings", "env", "flask_config", "load_settings", "price_overrides"]

DATABASE_POOLERS = ("none", "pgbouncer-transaction")
CACHE_BACKENDS = ("postgres", "memory")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PROVIDER_PRESETS = ("deepseek", "qwen", "sim")
@dataclass(frozen=True)
class DatabaseSettings:
    """Where the data lives. With no ``DATABASE_URL`` a private PostgreSQL starts under the instance directory."""

    url: str | None = env("DATABASE_URL", secret=True)
    # a session-level connection for what a transaction pooler cannot carry (LISTEN/NOTIFY, advisory locks,
    # migrations); defaults to DATABASE_URL
    direct_url: str | None = env("DATABASE_DIRECT_URL", secret=True)
    pooler: str = env("DATABASE_POOLER", "none", choices=DATABASE_POOLERS)
    # per process, whatever its thread count: screening threads hold no connection while an LLM answers and share
    # these for short statements (cache look-ups, checkpoints, the lease heartbeat, Celery's result writes)
    pool_size: int = env("DB_POOL_SIZE", 2, minimum=1)
    max_overflow: int = env("DB_MAX_OVERFLOW", 0, minimum=0)
    pool_timeout: float = env("DB_POOL_TIMEOUT", 30.0, minimum=0.1)
    instance_dir: str | None = env("LITSCREEN_INSTANCE_DIR")

    def __post_init__(self) -> None:
        from app.db.url import normalise_database_url

        for name, url in (("DATABASE_URL", self.url), ("DATABASE_DIRECT_URL", self.direct_url)):
            if url:
                try:
                    normalise_database_url(url)
                except Exception as exc:  # noqa: BLE001 - any parse failure is a bad variable; never echo the URL
                    raise ConfigError(f"{name} must be a postgresql:// URL ({type(exc).__name__})") from None


@dataclass(frozen=True)
class CelerySettings:
    """Broker, result backend and the PostgreSQL transport's clocks (see ``celeryconfig.py``)."""

    broker_url: str | None = env("CELERY_BROKER_URL", secret=True)
    result_backend: str | None = env("CELERY_RESULT_BACKEND", secret=True)
    result_expires: int = env("RESULT_EXPIRES_SECONDS", 7 * 24 * 3600, minimum=1)
    worker_lost_wait: float = env("WORKER_LOST_WAIT_SECONDS", 10.0, minimum=0.1)
    visibility_timeout: float = env("BROKER_VISIBILITY_TIMEOUT", 300.0, minimum=1)
    polling_interval: float = env("BROKER_POLLING_INTERVAL", 2.0, minimum=0.01)
    housekeeping_interval: float = env("BROKER_HOUSEKEEPING_INTERVAL", 30.0, minimum=0.1)
    reconnect_wait: float = env("BROKER_RECONNECT_WAIT", 60.0, minimum=0.1)
    result_backend_max_retries: int = env("RESULT_BACKEND_MAX_RETRIES", 60, minimum=0)
    event_queue_expires: float = env("CELERY_EVENT_QUEUE_EXPIRES", 60.0, minimum=1)
    control_queue_expires: float = env("CELERY_CONTROL_QUEUE_EXPIRES", 10.0, minimum=1)


@dataclass(frozen=True)
class BeatSettings:
    """Periods of beat's maintenance jobs (the sweeper's period is the engine's ``sweep_interval``)."""

    cache_cleanup_interval: float = env("CACHE_CLEANUP_INTERVAL_SECONDS", 60.0, minimum=1)
    broker_cleanup_interval: float = env("BROKER_CLEANUP_INTERVAL_SECONDS", 60.0, minimum=1)
    result_cleanup_interval: float = env("RESULT_CLEANUP_INTERVAL_SECONDS", 3600.0, minimum=1)


@dataclass(frozen=True)
class EngineSettings:
    """Recovery tuning of the batch engine (see README): lease TTL, checkpoint cadence, sweeper clocks, retries."""

    lease_ttl: float = env("LEASE_TTL_SECONDS", 120.0, minimum=1)
    checkpoint_every: int = env("CHECKPOINT_EVERY", 10, minimum=1)
    checkpoint_seconds: float = env("CHECKPOINT_SECONDS", 5.0, minimum=0.2)
    sweep_interval: float = env("SWEEP_INTERVAL_SECONDS", 30.0, minimum=0.1)
    # 0 means max(lease_ttl, 2 × sweep_interval)
    dispatch_grace: float = env("DISPATCH_GRACE_SECONDS", 0.0, minimum=0)
    chord_interval: float = env("CHORD_UNLOCK_INTERVAL_SECONDS", 1.0, minimum=0.1)
    # the Celery retry ladder of a batch whose LLM provider stays down: base, 2×base, 4×base … (capped at 16×base)
    retry_backoff: float = env("SCREENING_RETRY_BACKOFF_SECONDS", 60.0, minimum=1)
    max_retries: int = env("SCREENING_MAX_RETRIES", 3, minimum=0)
    # a refused or dropped database connection is waited out in place: backoff from 0.5 s up to db_wait_max_backoff
    # (with jitter), for at most db_wait_seconds in all (app/services/engine/waits.py)
    db_wait_seconds: float = env("DB_WAIT_SECONDS", 600.0, minimum=0)
    db_wait_max_backoff: float = env("DB_WAIT_MAX_BACKOFF_SECONDS", 5.0, minimum=0.1)
    # soft time limit of one screen_batch delivery (the hard limit is 5 minutes more)
    batch_soft_time_limit: float = env("SCREEN_BATCH_SOFT_TIME_LIMIT", 3 * 3600.0, minimum=1)
    # drift check: a finished title/abstract run of at least drift_check_min_records records re-screens a fixed
    # subset of drift_check_records of them without the cache and reports test–retest agreement (0: off)
    drift_check_records: int = env("DRIFT_CHECK_RECORDS", 20, minimum=0)
    drift_check_min_records: int = env("DRIFT_CHECK_MIN_RECORDS", 200, minimum=1)

    def __post_init__(self) -> None:
        if not self.dispatch_grace:
            object.__setattr__(self, "dispatch_grace", max(self.lease_ttl, 2 * self.sweep_interval))

    def retry_countdown(self, retries: int) -> float:
        """Seconds before Celery retry number ``retries + 1`` of a batch (no jitter: base × 2^retries, ≤ 16×)."""
        base = int(self.retry_backoff)
        return float(min(base * (2 ** retries), base * 16))

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Settings | None = None) -> EngineSettings:
        """The engine settings of ``config`` (default: the current Flask app's)."""
        return Settings.of(config).engine


@dataclass(frozen=True)
class ProviderOverrides:
    """What the configuration says about one LLM provider (``<NAME>_...``); unset values take the preset's."""

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float | None = None
    max_concurrency: int | None = None
    rpm: int | None = None


PROVIDER_VARIABLES = {  # field -> (variable suffix, type, minimum)
    "base_url": ("BASE_URL", str, None),
    "api_key": ("API_KEY", str, None),
    "timeout": ("TIMEOUT_SECONDS", float, 0.001),
    "max_concurrency": ("MAX_CONCURRENCY", int, 1),
    "rpm": ("RPM", int, 1),
}


@dataclass(frozen=True)
class LLMSettings:
    """The screening models, their providers, retries of one call, the answer cache and the price table.

    ``screening_models`` stays text: an unusable value is refused when a task starts (409), as the contract says.
    """

    screening_models: str = env("SCREENING_MODELS", "")
    decision_rule: str = env("SCREENING_DECISION_RULE", "unanimous", choices=DECISION_RULES)
    timeout: float = env("LLM_TIMEOUT_SECONDS", 60.0, minimum=0.001)
    max_attempts: int = env("LLM_MAX_ATTEMPTS", 8, minimum=1)
    retry_initial: float = env("LLM_RETRY_INITIAL_SECONDS", 1.0, minimum=0)
    retry_max: float = env("LLM_RETRY_MAX_SECONDS", 60.0, minimum=0)
    retry_jitter: float = env("LLM_RETRY_JITTER_SECONDS", 1.0, minimum=0)
    cache: bool = env("LLM_CACHE", True)
    cache_ttl: float = env("LLM_CACHE_TTL_SECONDS", 30 * 24 * 3600.0, minimum=0)  # 0: keep forever
    # what one record may put into a prompt (title + abstract); longer text is cut, with a warning
    prompt_max_chars: int = env("PROMPT_MAX_CHARS_PER_RECORD", 20_000, minimum=0)
    prices: str | None = env("LLM_PRICES")  # JSON {"provider:model": {"input": USD, "output": USD}} per 1M tokens
    # provider limits shared by every worker process through PostgreSQL, or applied by each process alone
    limits_scope: str = env("LLM_LIMITS_SCOPE", "fleet", choices=("fleet", "process"))
    providers: Mapping[str, ProviderOverrides] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.prices:
            price_overrides(self.prices)  # validates

    def provider(self, name: str) -> ProviderOverrides:
        """The configured overrides of provider ``name`` (all unset when the configuration names none)."""
        return self.providers.get(name, ProviderOverrides())


def price_overrides(raw: str | Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """``LLM_PRICES`` as {"provider:model": {"input", "output"}}; ConfigError naming the bad entry."""
    try:
        table = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise ConfigError("LLM_PRICES must be a JSON object of provider:model -> {input, output}") from None
    if not isinstance(table, Mapping):
        raise ConfigError("LLM_PRICES must be a JSON object of provider:model -> {input, output}")
    prices: dict[str, dict[str, float]] = {}
    for key, price in table.items():
        try:
            prices[str(key)] = {"input": float(price["input"]), "output": float(price["output"])}
        except (TypeError, KeyError, ValueError):
            raise ConfigError(f"LLM_PRICES entry {key!r} needs numeric input and output prices") from None
    return prices


@dataclass(frozen=True)
class CacheSettings:
    """The cache backend (``app/cache``)."""

    backend: str = env("CACHE_BACKEND", "postgres", choices=CACHE_BACKENDS)
    counter_flush_seconds: float = env("CACHE_COUNTER_FLUSH_SECONDS", 5.0, minimum=0.1)


@dataclass(frozen=True)
class ImportSettings:
    """Limits of one import (413 / 422 past them)."""

    max_bytes: int = env("MAX_IMPORT_BYTES", 50 * 1024 * 1024, minimum=1)
    max_records: int = env("MAX_IMPORT_RECORDS", 50_000, minimum=1)
    # import guards (app/importers/limits.py): a longer line refuses the file (422 naming the line)
    max_line_chars: int = env("MAX_IMPORT_LINE_CHARS", 1_000_000, minimum=1)


@dataclass(frozen=True)
class ApiSettings:
    """The HTTP API's own settings."""

    metrics_token: str | None = env("METRICS_TOKEN")  # when set, GET /metrics needs "Bearer <METRICS_TOKEN>"


WEB_COOKIE_SECURE_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class WebSettings:
    """The reviewer's workspace at /ui/ (``app/web/``): its signed session cookie.

    ``SECRET_KEY`` signs the cookie; when unset, a random key is created once in the instance directory
    (``<instance>/secret_key``, mode 0600) so every process of one installation shares it.
    ``WEB_COOKIE_SECURE``: ``auto`` marks the cookie Secure when the request came over https (behind a proxy that
    terminates TLS, say ``on``); ``off`` only for plain-http development.
    """

    secret_key: str | None = env("SECRET_KEY", secret=True)
    cookie_secure: str = env("WEB_COOKIE_SECURE", "auto", choices=WEB_COOKIE_SECURE_MODES)
    session_hours: float = env("WEB_SESSION_HOURS", 12.0, minimum=0.01)


@dataclass(frozen=True)
class FulltextSettings:
    """Full texts: limits of an upload (one PDF, its pages, a ZIP), the models' context, the caches' lifetimes."""

    max_pdf_bytes: int = env("FULLTEXT_MAX_PDF_BYTES", 50 * 1024 * 1024, minimum=1)
    max_pages: int = env("FULLTEXT_MAX_PAGES", 300, minimum=1)
    max_upload_bytes: int = env("FULLTEXT_MAX_UPLOAD_BYTES", 200 * 1024 * 1024, minimum=1)
    max_zip_entries: int = env("FULLTEXT_MAX_ZIP_ENTRIES", 500, minimum=1)
    max_zip_ratio: float = env("FULLTEXT_MAX_ZIP_RATIO", 100.0, minimum=1)
    max_zip_uncompressed: int = env("FULLTEXT_MAX_ZIP_UNCOMPRESSED_BYTES", 1024 * 1024 * 1024, minimum=1)
    # tokens of one prompt; per model: JSON {"provider:model": tokens}
    context_tokens: int = env("FULLTEXT_CONTEXT_TOKENS", 64000, minimum=1000)
    model_context: str | None = env("FULLTEXT_MODEL_CONTEXT")
    cache_ttl: float = env("FULLTEXT_CACHE_TTL_SECONDS", 3600.0, minimum=0)      # 0: keep forever
    pdf_cache_ttl: float = env("PDF_CACHE_TTL_SECONDS", 30 * 24 * 3600.0, minimum=0)  # 0: keep forever

    def __post_init__(self) -> None:
        self.contexts()  # validates FULLTEXT_MODEL_CONTEXT

    def contexts(self) -> dict[str, int]:
        """``FULLTEXT_MODEL_CONTEXT`` as {"provider:model": tokens}; ConfigError when it is not that."""
        if not self.model_context:
            return {}
        try:
            table = json.loads(self.model_context)
            if not isinstance(table, Mapping):
                raise ValueError
            return {str(key): int(value) for key, value in table.items()}
        except (TypeError, ValueError):
            raise ConfigError("FULLTEXT_MODEL_CONTEXT must be a JSON object of provider:model -> tokens") from None

    def context_for(self, model_key: str) -> int:
        """The context window (tokens) of ``provider:model`` for full texts."""
        return self.contexts().get(model_key, self.context_tokens)


@dataclass(frozen=True)
class DatasetSettings:
    """Limits of one clinical dataset upload (``app/services/dc/reading.py``; 413 / 422 past them)."""

    max_rows: int = env("DC_MAX_ROWS", 100_000, minimum=1)
    max_uncompressed_bytes: int = env("DC_MAX_UNCOMPRESSED_BYTES", 1024 * 1024 * 1024, minimum=1)
    max_compression_ratio: int = env("DC_MAX_COMPRESSION_RATIO", 200, minimum=1)
    max_sheet_cells: int = env("DC_MAX_SHEET_CELLS", 50_000_000, minimum=1)


@dataclass(frozen=True)
class OperationsSettings:
    """What ``litscreen doctor`` (and ``/readyz``) need to judge a stack: the web fleet's size and its thresholds."""

    # gunicorn worker processes (gunicorn.conf.py reads it from here too); part of the connection arithmetic
    web_concurrency: int = env("WEB_CONCURRENCY", 2, minimum=1)
    # how long doctor waits for worker replies (inspect ping) and for each LLM provider's answer
    doctor_timeout: float = env("DOCTOR_TIMEOUT_SECONDS", 3.0, minimum=0.1)
    # connection use (or the fleet's bound) above this share of what max_connections leaves is a failure
    connections_warn_ratio: float = env("DOCTOR_CONNECTIONS_WARN_RATIO", 0.8, minimum=0.01)
    # beat counts as dead when the sweeper has not run for this long; 0 means 3 × SWEEP_INTERVAL_SECONDS + 60
    beat_max_age: float = env("DOCTOR_BEAT_MAX_AGE_SECONDS", 0.0, minimum=0)


GROUP_TYPES: dict[str, type] = {
    "database": DatabaseSettings, "celery": CelerySettings, "beat": BeatSettings, "engine": EngineSettings,
    "llm": LLMSettings, "cache": CacheSettings, "imports": ImportSettings, "fulltext": FulltextSettings,
    "api": ApiSettings, "datasets": DatasetSettings, "web": WebSettings, "operations": OperationsSettings,
}


@dataclass(frozen=True)
class Settings:
    """Everything litscreen reads from its environment, typed and validated."""

    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    celery: CelerySettings = field(default_factory=CelerySettings)
    beat: BeatSettings = field(default_factory=BeatSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    imports: ImportSettings = field(default_factory=ImportSettings)
    fulltext: FulltextSettings = field(default_factory=FulltextSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    datasets: DatasetSettings = field(default_factory=DatasetSettings)
    web: WebSettings = field(default_factory=WebSettings)
    operations: OperationsSettings = field(default_factory=OperationsSettings)
    log_level: str = env("LOG_LEVEL", "INFO", choices=LOG_LEVELS)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Parse and validate ``values`` (variable name -> raw or typed value); ConfigError names a bad one."""
        groups: dict[str, Any] = {name: group(kind, values) for name, kind in GROUP_TYPES.items()}
        llm: LLMSettings = groups["llm"]
        providers = {name: _provider(values, name) for name in _provider_names(llm.screening_models)}
        groups["llm"] = replace(llm, providers=providers)
        level = values.get("LOG_LEVEL")
        if is_set(level):
            groups["log_level"] = parse("LOG_LEVEL", str, level, None, LOG_LEVELS)
        return cls(**groups)

    @classmethod
    def of(cls, config: Mapping[str, Any] | Settings | None = None) -> Settings:
        """The settings in ``config``: a Settings as is, a mapping (e.g. ``app.config``) parsed, None: the app's."""
        if isinstance(config, Settings):
            return config
        if config is None:
            from flask import current_app

            config = current_app.config
        return cls.from_mapping(config)

    def as_variables(self) -> dict[str, Any]:
        """Every setting under its variable name (``app.config`` keeps them so; providers as ``<NAME>_...``)."""
        variables: dict[str, Any] = {"LOG_LEVEL": self.log_level}
        for name in GROUP_TYPES:
            variables.update(as_variables(getattr(self, name)))
        for provider, overrides in self.llm.providers.items():
            for attribute, (suffix, _kind, _minimum) in PROVIDER_VARIABLES.items():
                value = getattr(overrides, attribute)
                if value is not None:
                    variables[f"{provider.upper()}_{suffix}"] = value
        return variables


def _provider_names(screening_models: str) -> list[str]:
    """The presets, and every provider ``SCREENING_MODELS`` names (malformed entries are refused at task start)."""
    names = list(PROVIDER_PRESETS)
    for entry in screening_models.split(","):
        provider = entry.split(":", 1)[0].strip().lower() if ":" in entry else ""
        if provider and provider not in names:
            names.append(provider)
    return names


def _provider(values: Mapping[str, Any], name: str) -> ProviderOverrides:
    kwargs: dict[str, Any] = {}
    for attribute, (suffix, kind, minimum) in PROVIDER_VARIABLES.items():
        variable = f"{name.upper()}_{suffix}"
        if is_set(values.get(variable)):
            kwargs[attribute] = parse(variable, kind, values[variable], minimum, None)
    return ProviderOverrides(**kwargs)


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """The environment, updated with ``overrides``, as validated :class:`Settings` (ConfigError when it is not)."""
    values: dict[str, Any] = dict(os.environ)
    if overrides:
        values.update(overrides)
    return Settings.from_mapping(values)


def flask_config(settings: Settings, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``app.config`` for ``settings``: the variables, flask-smorest's OpenAPI settings, then ``overrides``."""
    variables = settings.as_variables()
    config = dict(variables)
    config.update(
        API_TITLE="litscreen",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        # Swagger UI served from the installed flask-swagger-ui package (app/web/docs.py): no CDN, works offline
        OPENAPI_SWAGGER_UI_URL="/api/swagger-ui/",
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},  # no badge fetched from validator.swagger.io
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}],
        },
        JSON_SORT_KEYS=False,
        # reject oversize uploads before reading them (413), with room for multipart overhead
        MAX_CONTENT_LENGTH=settings.imports.max_bytes + 1024 * 1024,
    )
    # keys that are not settings (TESTING, CELERY_CONFIG, ...) pass through; settings keep their parsed values
    config.update({key: value for key, value in (overrides or {}).items() if key not in variables})
    return config
