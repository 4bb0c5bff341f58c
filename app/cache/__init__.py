"""The cache: one interface, a PostgreSQL backend (default) and an in-process memory backend.

``get_cache(config)`` picks the backend from ``CACHE_BACKEND`` (``postgres`` | ``memory``). Key prefixes in
use: ``asl:llm:``, ``asl:pdf:``, ``dc:health:``, ``dc:extraction:``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from app.cache.base import Cache, key_prefix
from app.cache.memory import MemoryCache
from app.cache.postgres import PostgresCache
from app.config import CACHE_BACKENDS, Settings

_memory_cache: MemoryCache | None = None
_postgres_caches: dict[int, PostgresCache] = {}
_lock = threading.Lock()

__all__ = ["CACHE_BACKENDS", "Cache", "MemoryCache", "PostgresCache", "get_cache", "key_prefix", "postgres_cache"]


def get_cache(config: Mapping[str, Any] | Settings | None = None, engine: Engine | None = None) -> Cache:
    """The process's cache for ``CACHE_BACKEND``; the PostgreSQL one needs ``engine`` (default: current app's)."""
    global _memory_cache
    settings = Settings.of(config).cache
    if settings.backend == "memory":
        with _lock:
            if _memory_cache is None:
                _memory_cache = MemoryCache()
            return _memory_cache
    if engine is None:
        from app.extensions import db

        engine = db.engine
    return postgres_cache(engine, settings.counter_flush_seconds)


def postgres_cache(engine: Engine, counter_flush_seconds: float = 5.0) -> PostgresCache:
    """The process's PostgreSQL cache on ``engine`` (one per engine)."""
    with _lock:
        cache = _postgres_caches.get(id(engine))
        if cache is None or cache.engine is not engine:
            cache = _postgres_caches[id(engine)] = PostgresCache(engine, counter_flush_seconds)
        return cache
