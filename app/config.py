"""Typed configuration defaults, overridden by the environment (see README's configuration table)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


@dataclass
class Settings:
    """Everything litscreen reads from its environment, with defaults."""

    DATABASE_URL: str | None = field(default_factory=lambda: os.environ.get("DATABASE_URL") or None)
    CELERY_BROKER_URL: str | None = field(default_factory=lambda: os.environ.get("CELERY_BROKER_URL") or None)
    CELERY_RESULT_BACKEND: str | None = field(
        default_factory=lambda: os.environ.get("CELERY_RESULT_BACKEND") or None
    )
    INSTANCE_DIR: str | None = field(default_factory=lambda: os.environ.get("LITSCREEN_INSTANCE_DIR") or None)
    CACHE_BACKEND: str = field(default_factory=lambda: os.environ.get("CACHE_BACKEND", "postgres"))
    SCREENING_MODELS: str = field(default_factory=lambda: os.environ.get("SCREENING_MODELS", ""))
    LEASE_TTL_SECONDS: int = field(default_factory=lambda: _env_int("LEASE_TTL_SECONDS", 120))
    CHECKPOINT_EVERY: int = field(default_factory=lambda: _env_int("CHECKPOINT_EVERY", 10))
    SWEEP_INTERVAL_SECONDS: int = field(default_factory=lambda: _env_int("SWEEP_INTERVAL_SECONDS", 30))
    MAX_IMPORT_BYTES: int = field(default_factory=lambda: _env_int("MAX_IMPORT_BYTES", 50 * 1024 * 1024))
    MAX_IMPORT_RECORDS: int = field(default_factory=lambda: _env_int("MAX_IMPORT_RECORDS", 50_000))
    LLM_TIMEOUT_SECONDS: float = field(default_factory=lambda: _env_float("LLM_TIMEOUT_SECONDS", 60.0))
    # per process, whatever its thread count: screening threads hold no connection while an LLM answers and share
    # these for short statements (cache look-ups, checkpoints, the lease heartbeat); see README "Connections"
    DB_POOL_SIZE: int = field(default_factory=lambda: _env_int("DB_POOL_SIZE", 2))
    DB_MAX_OVERFLOW: int = field(default_factory=lambda: _env_int("DB_MAX_OVERFLOW", 0))
    DB_POOL_TIMEOUT: float = field(default_factory=lambda: _env_float("DB_POOL_TIMEOUT", 30.0))
    LOG_LEVEL: str = field(default_factory=lambda: os.environ.get("LOG_LEVEL", "INFO"))

    def as_flask_config(self) -> dict[str, Any]:
        """The settings as a dict for ``app.config.update``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults + environment, then ``overrides`` (tests pass their own)."""
    config = Settings().as_flask_config()
    config.update(
        # flask-smorest / OpenAPI
        API_TITLE="litscreen",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        API_SPEC_OPTIONS={
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}
            },
            "security": [{"bearerAuth": []}],
        },
        MAX_CONTENT_LENGTH=None,
        JSON_SORT_KEYS=False,
    )
    if overrides:
        config.update(overrides)
    if config.get("MAX_CONTENT_LENGTH") is None:
        # Reject oversize uploads before reading them (413), with room for multipart overhead.
        config["MAX_CONTENT_LENGTH"] = int(config["MAX_IMPORT_BYTES"]) + 1024 * 1024
    return config
