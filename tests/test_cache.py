"""The cache interface, run against both backends: PostgreSQL (real database) and memory."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine

from app.cache import Cache, MemoryCache, PostgresCache, get_cache, key_prefix
from tests.support.database import conninfo
from tests.support.processes import ProcessGroup, subprocess_env, wait_for


@pytest.fixture(params=["postgres", "memory"])
def cache(request: pytest.FixtureRequest) -> Iterator[Cache]:
    if request.param == "memory":
        yield MemoryCache()
        return
    database_url = request.getfixturevalue("database_url")
    engine = create_engine(database_url)
    backend = PostgresCache(engine, counter_flush_seconds=3600)
    try:
        yield backend
    finally:
        engine.dispose()


def test_set_get_delete(cache: Cache) -> None:
    assert cache.get("asl:llm:a") is None
    cache.set("asl:llm:a", {"decision": "include", "n": [1, 2]}, ttl=60)
    assert cache.get("asl:llm:a") == {"decision": "include", "n": [1, 2]}
    cache.set("asl:llm:a", {"decision": "exclude"}, ttl=60)       # upsert
    assert cache.get("asl:llm:a") == {"decision": "exclude"}
    assert cache.delete("asl:llm:a") is True
    assert cache.delete("asl:llm:a") is False
    assert cache.get("asl:llm:a") is None


def test_get_many_returns_present_unexpired_keys_and_counts_each(cache: Cache) -> None:
    cache.set("asl:llm:a", {"v": 1}, ttl=60)
    cache.set("asl:llm:b", {"v": 2}, ttl=60)
    cache.set("asl:llm:old", {"v": 3}, ttl=-1)
    found = cache.get_many(["asl:llm:a", "asl:llm:b", "asl:llm:old", "asl:llm:missing", "asl:llm:a"])
    assert found == {"asl:llm:a": {"v": 1}, "asl:llm:b": {"v": 2}}
    assert cache.get_many([]) == {}
    cache.flush_counters()
    stats = cache.stats()["by_prefix"]["asl:llm:"]
    assert (stats["hits"], stats["misses"]) == (2, 2)


def test_values_without_ttl_do_not_expire(cache: Cache) -> None:
    cache.set("dc:health:x", "ok")
    assert cache.get("dc:health:x") == "ok"


def test_expired_entries_are_never_returned(cache: Cache) -> None:
    cache.set("asl:llm:gone", {"v": 1}, ttl=-1)
    assert cache.get("asl:llm:gone") is None
    cache.set("asl:llm:soon", {"v": 2}, ttl=0.3)
    cache.set("asl:llm:later", {"v": 3}, ttl=600)
    assert cache.stats()["total"] == 2          # the first was removed lazily by the read
    wait_for(lambda: cache.get("asl:llm:soon") is None, timeout=10, message="the short entry to expire")
    assert cache.get("asl:llm:later") == {"v": 3}
    assert cache.stats()["total"] == 1


def test_delete_expired_removes_only_expired(cache: Cache) -> None:
    for i in range(5):
        cache.set(f"asl:pdf:{i}", i, ttl=-1 if i < 3 else 600)
    stats = cache.stats()
    assert stats["expired"] == 3 and stats["total"] == 5
    assert cache.delete_expired(limit=2) == 2
    assert cache.delete_expired(limit=1000) == 1
    assert cache.stats() | {"by_prefix": None} == {
        "total": 2, "expired": 0, "by_prefix": None, "hits": 0, "misses": 0}


def test_delete_prefix_flush_and_stats_by_prefix(cache: Cache) -> None:
    for i in range(3):
        cache.set(f"asl:llm:{i}", i, ttl=60)
    cache.set("dc:extraction:1", 1, ttl=60)
    cache.set("odd_%key", 1, ttl=60)
    assert cache.get("asl:llm:0") == 0            # a hit
    assert cache.get("asl:llm:missing") is None   # a miss
    stats = cache.stats()
    assert stats["total"] == 5
    assert stats["by_prefix"]["asl:llm:"] == {"total": 3, "expired": 0, "hits": 1, "misses": 1}
    assert stats["by_prefix"]["dc:extraction:"]["total"] == 1
    assert stats["by_prefix"]["(other)"]["total"] == 1
    assert (stats["hits"], stats["misses"]) == (1, 1)
    assert cache.delete_prefix("odd_") == 1       # LIKE wildcards in a prefix are literal
    assert cache.delete_prefix("asl:llm:") == 3
    assert cache.delete_prefix("asl:llm:") == 0
    assert cache.flush() == 1
    assert cache.stats()["total"] == 0


def test_keys_are_checked(cache: Cache) -> None:
    with pytest.raises(ValueError):
        cache.set("", 1)
    with pytest.raises(ValueError):
        cache.set("k" * 501, 1)


def test_key_prefix() -> None:
    assert key_prefix("asl:llm:abc") == "asl:llm:"
    assert key_prefix("plain") == "(other)"


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="CACHE_BACKEND"):
        get_cache({"CACHE_BACKEND": "redis"})


def test_counters_from_one_process_are_visible_to_another(database_url: str) -> None:
    worker_engine, web_engine = create_engine(database_url), create_engine(database_url)
    try:
        worker = PostgresCache(worker_engine, counter_flush_seconds=3600)
        worker.set("asl:llm:k", 1, ttl=60)
        for _ in range(3):
            worker.get("asl:llm:k")
        worker.get("asl:llm:nope")
        web = PostgresCache(web_engine)
        assert (web.stats()["hits"], web.stats()["misses"]) == (0, 0)   # not flushed yet
        worker.flush_counters()
        worker.get("asl:llm:k")
        worker.flush_counters()
        stats = web.stats()
        assert (stats["hits"], stats["misses"]) == (4, 1)
    finally:
        worker_engine.dispose()
        web_engine.dispose()


WRITER = textwrap.dedent("""
    import os, sys, time
    from sqlalchemy import create_engine
    from app.cache import PostgresCache
    cache = PostgresCache(create_engine(os.environ["DATABASE_URL"]))
    go = sys.argv[1]
    while not os.path.exists(go):
        time.sleep(0.01)
    for i in range(300):
        cache.set("asl:llm:shared", {"writer": os.getpid(), "i": i}, ttl=600)
    print("done", flush=True)
""")


def test_two_processes_writing_the_same_key_leave_one_row(database_url: str, processes: ProcessGroup,
                                                          tmp_path) -> None:
    go = tmp_path / "go"
    writers = [processes.start([sys.executable, "-c", WRITER, str(go)], subprocess_env(database_url), f"writer{i}")
               for i in range(2)]
    time.sleep(0.5)   # let both import and connect, then release them together
    go.touch()
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.log_path.read_text()
    with psycopg.connect(conninfo(database_url)) as conn:
        rows = conn.execute("SELECT value FROM app_cache WHERE key = 'asl:llm:shared'").fetchall()
    assert len(rows) == 1
    assert rows[0][0]["i"] == 299
    assert rows[0][0]["writer"] in {w.pid for w in writers}


def test_purge_expired_works_in_bounded_batches(cache: Cache) -> None:
    for i in range(25):
        cache.set(f"asl:llm:{i}", i, ttl=-1 if i % 5 else 600)
    assert cache.purge_expired(batch_size=7) == 20
    assert cache.stats()["total"] == 5
