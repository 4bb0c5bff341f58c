"""The cache interface shared by the PostgreSQL and memory backends, with hit/miss counting per key prefix."""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from typing import Any

KEY_MAX_LENGTH = 500
_PREFIX = re.compile(r"^[^:]*:[^:]*:")
OTHER_PREFIX = "(other)"


def key_prefix(key: str) -> str:
    """The stats prefix of a key: its first two ``:``-separated parts (``asl:llm:``), else ``(other)``."""
    match = _PREFIX.match(key)
    return match.group(0) if match else OTHER_PREFIX


def check_key(key: str) -> str:
    """``key`` if it is a non-empty string of at most 500 characters; ValueError otherwise."""
    if not isinstance(key, str) or not key or len(key) > KEY_MAX_LENGTH:
        raise ValueError(f"cache key must be a non-empty string of at most {KEY_MAX_LENGTH} characters")
    return key


class Cache(ABC):
    """get / set with TTL / delete / delete_prefix / flush / stats; values are JSON-able."""

    def __init__(self) -> None:
        self._counter_lock = threading.Lock()
        self._pending: dict[str, list[int]] = {}   # prefix -> [hits, misses] not yet flushed

    # -- interface ---------------------------------------------------------------------------------------
    @abstractmethod
    def get(self, key: str) -> Any | None:
        """The value, or None when absent or expired (expired entries are never returned)."""

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """``{key: value}`` of the keys present and not expired (each key counted as a hit or a miss)."""
        found: dict[str, Any] = {}
        for key in dict.fromkeys(keys):
            value = self.get(key)
            if value is not None:
                found[key] = value
        return found

    @abstractmethod
    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` (upsert) for ``ttl`` seconds (None = no expiry)."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove one key; whether it existed."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix``; how many."""

    @abstractmethod
    def flush(self) -> int:
        """Remove everything; how many entries."""

    @abstractmethod
    def delete_expired(self, limit: int = 1000) -> int:
        """Remove up to ``limit`` expired entries; how many."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """``{total, expired, by_prefix: {prefix: {total, expired, hits, misses}}, hits, misses}``."""

    def purge_expired(self, batch_size: int = 1000, max_batches: int = 100) -> int:
        """Delete expired entries in bounded batches (for the periodic cleanup); how many in all."""
        removed = 0
        for _ in range(max_batches):
            count = self.delete_expired(batch_size)
            removed += count
            if count < batch_size:
                break
        return removed

    def close(self) -> None:
        """Flush counters and release resources."""
        self.flush_counters()

    # -- hit / miss counters -----------------------------------------------------------------------------
    def _count(self, key: str, hit: bool) -> None:
        with self._counter_lock:
            counts = self._pending.setdefault(key_prefix(key), [0, 0])
            counts[0 if hit else 1] += 1

    def _take_pending(self) -> dict[str, list[int]]:
        with self._counter_lock:
            pending, self._pending = self._pending, {}
        return pending

    def flush_counters(self) -> None:  # noqa: B027 - a no-op default, not abstract: few backends need it
        """Persist counted hits and misses (backends that share counters across processes override this)."""


def empty_prefix_stats() -> dict[str, int]:
    """The counts of one key prefix before anything is added."""
    return {"total": 0, "expired": 0, "hits": 0, "misses": 0}


def stats_document(by_prefix: dict[str, dict[str, int]]) -> dict[str, Any]:
    """``{total, expired, by_prefix, hits, misses}``: the per-prefix counts and their sums."""
    return {
        "total": sum(e["total"] for e in by_prefix.values()),
        "expired": sum(e["expired"] for e in by_prefix.values()),
        "by_prefix": by_prefix,
        "hits": sum(e["hits"] for e in by_prefix.values()),
        "misses": sum(e["misses"] for e in by_prefix.values()),
    }
