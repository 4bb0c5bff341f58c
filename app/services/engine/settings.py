"""The engine's tuning values (see the README's configuration table), read once from the app's config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.settings import float_setting


@dataclass(frozen=True)
class EngineSettings:
    """Recovery tuning: lease TTL, checkpoint cadence, sweeper clocks, retry ladder and database waits."""

    lease_ttl: float = 120.0
    checkpoint_every: int = 10
    checkpoint_seconds: float = 5.0
    sweep_interval: float = 30.0
    dispatch_grace: float = 120.0
    chord_interval: float = 1.0
    # the Celery retry ladder of a batch whose LLM provider is down: base, 2×base, 4×base … (capped at 16×base)
    retry_backoff: float = 60.0
    max_retries: int = 3
    # a refused or dropped database connection is waited out: backoff from 0.5 s up to db_wait_max_backoff
    # (with jitter), for at most db_wait_seconds in all
    db_wait_seconds: float = 600.0
    db_wait_max_backoff: float = 5.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> EngineSettings:
        """Read the settings from ``config`` (the Flask config), falling back to the environment."""
        def value(name: str, default: float) -> float:
            return float_setting(config, name, default)

        lease_ttl = max(1.0, value("LEASE_TTL_SECONDS", 120.0))
        sweep = value("SWEEP_INTERVAL_SECONDS", 30.0)
        return cls(
            lease_ttl=lease_ttl,
            checkpoint_every=max(1, int(value("CHECKPOINT_EVERY", 10))),
            checkpoint_seconds=max(0.2, value("CHECKPOINT_SECONDS", 5.0)),
            sweep_interval=sweep,
            dispatch_grace=value("DISPATCH_GRACE_SECONDS", max(lease_ttl, 2 * sweep)),
            chord_interval=max(0.1, value("CHORD_UNLOCK_INTERVAL_SECONDS", 1.0)),
            retry_backoff=max(1.0, value("SCREENING_RETRY_BACKOFF_SECONDS", 60.0)),
            max_retries=max(0, int(value("SCREENING_MAX_RETRIES", 3))),
            db_wait_seconds=max(0.0, value("DB_WAIT_SECONDS", 600.0)),
            db_wait_max_backoff=max(0.1, value("DB_WAIT_MAX_BACKOFF_SECONDS", 5.0)),
        )

    def retry_countdown(self, retries: int) -> float:
        """Seconds before Celery retry number ``retries + 1`` of a batch (no jitter: base × 2^retries, ≤ 16×)."""
        base = int(self.retry_backoff)
        return float(min(base * (2 ** retries), base * 16))
