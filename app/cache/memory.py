"""In-process cache backend (``CACHE_BACKEND=memory``) for development: nothing survives the process."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from app.cache.base import Cache, check_key, empty_prefix_stats, key_prefix, stats_document


class MemoryCache(Cache):
    """A dict with expiry times, guarded by a lock."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Any, float | None]] = {}
        self._counts: dict[str, list[int]] = {}

    def get(self, key: str) -> Any | None:
        check_key(key)
        now = time.time()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[1] is not None and entry[1] <= now:
                del self._entries[key]
                entry = None
        self._count(key, entry is not None)
        return copy.deepcopy(entry[0]) if entry is not None else None

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        check_key(key)
        expires = time.time() + ttl if ttl is not None else None
        with self._lock:
            self._entries[key] = (copy.deepcopy(value), expires)

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._entries.pop(key, None) is not None

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            keys = [k for k in self._entries if k.startswith(prefix)]
            for k in keys:
                del self._entries[k]
        return len(keys)

    def flush(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
        return count

    def delete_expired(self, limit: int = 1000) -> int:
        now = time.time()
        with self._lock:
            keys = [k for k, (_, exp) in self._entries.items() if exp is not None and exp <= now][:limit]
            for k in keys:
                del self._entries[k]
        return len(keys)

    def flush_counters(self) -> None:
        for prefix, (hits, misses) in self._take_pending().items():
            counts = self._counts.setdefault(prefix, [0, 0])
            counts[0] += hits
            counts[1] += misses

    def stats(self) -> dict[str, Any]:
        self.flush_counters()
        now = time.time()
        by_prefix: dict[str, dict[str, int]] = {}
        with self._lock:
            for key, (_, expires) in self._entries.items():
                entry = by_prefix.setdefault(key_prefix(key), empty_prefix_stats())
                entry["total"] += 1
                entry["expired"] += int(expires is not None and expires <= now)
        for prefix, (hits, misses) in self._counts.items():
            entry = by_prefix.setdefault(prefix, empty_prefix_stats())
            entry["hits"], entry["misses"] = hits, misses
        return stats_document(by_prefix)
