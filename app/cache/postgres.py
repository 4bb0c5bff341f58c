"""PostgreSQL cache backend on ``app_cache``: upsert on set, lazy expiry on read, counters in ``app_cache_counters``.

Expiry uses the database clock (``now()``), so every process agrees on what has expired. Hits and misses are
counted in process and added to ``app_cache_counters`` at most every ``counter_flush_seconds`` (and on
``close``/``flush_counters``), so the web process sees the counts of the workers without a write per read.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, Interval, String, and_, any_, bindparam, delete, func, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.exc import SQLAlchemyError

from app.cache.base import OTHER_PREFIX, Cache, check_key, empty_prefix_stats, stats_document
from app.models.cache import CacheCounter, CacheEntry

logger = logging.getLogger(__name__)

_entries = CacheEntry.__table__
_counters = CacheCounter.__table__
_PREFIX_SQL = r"^[^:]*:[^:]*:"

# the statements of the hot path, built once (SQLAlchemy then reuses their compiled form from its cache)
_EXPIRED = and_(_entries.c.expires_at.is_not(None), _entries.c.expires_at <= func.now())
_KEYS = bindparam("cache_keys", type_=ARRAY(String))
_GET = select(_entries.c.key, _entries.c.value, _EXPIRED.label("expired")).where(_entries.c.key == any_(_KEYS))
_DELETE_EXPIRED_KEYS = delete(_entries).where(_entries.c.key == any_(_KEYS), _EXPIRED)
_insert = insert(_entries).values(
    key=bindparam("cache_key", type_=_entries.c.key.type),
    value=bindparam("cache_value", type_=_entries.c.value.type),
    expires_at=func.now() + bindparam("cache_ttl", type_=Interval),   # NULL ttl -> NULL expires_at (no expiry)
    created_at=func.now(),
)
_SET = _insert.on_conflict_do_update(
    index_elements=[_entries.c.key],
    set_={"value": _insert.excluded.value, "expires_at": _insert.excluded.expires_at,
          "created_at": _insert.excluded.created_at},
)


class PostgresCache(Cache):
    """The cache every litscreen process shares through the database."""

    def __init__(self, engine: Engine, counter_flush_seconds: float = 5.0) -> None:
        super().__init__()
        self.engine = engine
        # single statements need no transaction block: autocommit saves the BEGIN / COMMIT round trips
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.counter_flush_seconds = counter_flush_seconds
        self._last_flush = time.monotonic()
        self._flush_lock = threading.Lock()
        atexit.register(_flush_at_exit, weakref.ref(self))

    def get(self, key: str) -> Any | None:
        check_key(key)
        return self.get_many([key]).get(key)

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """One SELECT for all ``keys`` (expired ones are deleted, never returned); each key counted."""
        keys = list(dict.fromkeys(check_key(key) for key in keys))
        if not keys:
            return {}
        with self._autocommit.connect() as conn:
            rows = conn.execute(_GET, {"cache_keys": keys}).all()
            expired = [row.key for row in rows if row.expired]
            if expired:
                conn.execute(_DELETE_EXPIRED_KEYS, {"cache_keys": expired})
        found = {row.key: row.value for row in rows if not row.expired}
        for key in keys:
            self._count(key, key in found)
        self._maybe_flush_counters()
        return found

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        check_key(key)
        with self._autocommit.connect() as conn:
            conn.execute(_SET, {"cache_key": key, "cache_value": value,
                                "cache_ttl": timedelta(seconds=ttl) if ttl is not None else None})

    def delete(self, key: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(_entries).where(_entries.c.key == key)).rowcount > 0

    def delete_prefix(self, prefix: str) -> int:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.engine.begin() as conn:
            return conn.execute(delete(_entries).where(_entries.c.key.like(escaped + "%", escape="\\"))).rowcount

    def flush(self) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(_entries)).rowcount

    def delete_expired(self, limit: int = 1000) -> int:
        batch = (select(_entries.c.key).where(_entries.c.expires_at <= func.now()).limit(limit)
                 .with_for_update(skip_locked=True))
        with self.engine.begin() as conn:
            return conn.execute(delete(_entries).where(_entries.c.key.in_(batch.scalar_subquery()))).rowcount

    # -- counters ----------------------------------------------------------------------------------------
    def _maybe_flush_counters(self) -> None:
        if time.monotonic() - self._last_flush >= self.counter_flush_seconds:
            self._flush_quietly()

    def _flush_quietly(self, level: int = logging.WARNING) -> None:
        try:
            self.flush_counters()
        except SQLAlchemyError as exc:
            logger.log(level, "could not persist cache hit/miss counters: %s", exc.__class__.__name__)

    def flush_counters(self) -> None:
        """Add this process's counted hits and misses to ``app_cache_counters`` (kept for later if that fails)."""
        with self._flush_lock:
            self._last_flush = time.monotonic()
            pending = self._take_pending()
            if not pending:
                return
            rows = [{"prefix": p[:100], "hits": h, "misses": m, "updated_at": func.now()}
                    for p, (h, m) in sorted(pending.items())]
            statement = insert(_counters).values(rows)
            statement = statement.on_conflict_do_update(
                index_elements=[_counters.c.prefix],
                set_={"hits": _counters.c.hits + statement.excluded.hits,
                      "misses": _counters.c.misses + statement.excluded.misses,
                      "updated_at": func.now()},
            )
            try:
                with self.engine.begin() as conn:
                    conn.execute(statement)
            except SQLAlchemyError:
                with self._counter_lock:
                    for prefix, (hits, misses) in pending.items():
                        counts = self._pending.setdefault(prefix, [0, 0])
                        counts[0] += hits
                        counts[1] += misses
                raise

    def stats(self) -> dict[str, Any]:
        self._flush_quietly()
        prefix = func.coalesce(func.substring(_entries.c.key, _PREFIX_SQL), literal(OTHER_PREFIX)).label("prefix")
        is_valid = or_(_entries.c.expires_at.is_(None), _entries.c.expires_at > func.now())
        by_prefix: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(
                select(prefix, func.count().label("total"),
                       func.count().filter(~is_valid).label("expired")).group_by(prefix)
            ):
                by_prefix[row.prefix] = {"total": row.total, "expired": row.expired, "hits": 0, "misses": 0}
            for row in conn.execute(select(_counters.c.prefix, _counters.c.hits, _counters.c.misses)):
                entry = by_prefix.setdefault(row.prefix, empty_prefix_stats())
                entry["hits"], entry["misses"] = int(row.hits), int(row.misses)
        return stats_document(by_prefix)


def _flush_at_exit(ref: weakref.ref[PostgresCache]) -> None:
    """Persist the last counts of a process that ends (quietly: the database may be gone already)."""
    cache = ref()
    if cache is not None:
        cache._flush_quietly(logging.DEBUG)
