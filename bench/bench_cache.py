"""Cache benchmark: PostgreSQL cache (litscreen's PostgresCache on app_cache) vs Redis GET/SET, one run.

Single client, loopback, ~1 KB JSON values shaped like an LLM cache entry. Reports p50 / p99 / mean per
operation in milliseconds. Targets for the PostgreSQL cache: get p99 <= 2 ms, set p99 <= 5 ms.

    .venv/bin/python bench/bench_cache.py [--ops 5000] [--redis redis://127.0.0.1:6379/0]

The PostgreSQL database is created here (admin server from TEST_DATABASE_URL, else 127.0.0.1:5432, else an
embedded server, as in the tests) and dropped at the end; the Redis keys are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine  # noqa: E402

from app.cache import PostgresCache  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from tests.support import database  # noqa: E402  (same provisioning as the test suite)

GET_P99_TARGET_MS = 2.0
SET_P99_TARGET_MS = 5.0


def llm_value(i: int) -> dict:
    """A value the size of a cached LLM answer (~1 KB)."""
    return {
        "decision": "include" if i % 3 else "exclude",
        "reason": "The record studies reminders to physicians and reports guideline adherence. " * 4,
        "confidence": 0.82,
        "picos": {"P": "match", "I": "match", "C": "partial", "O": "match", "S": "no match"},
        "raw_response": "{" + "x" * 400 + "}",
        "prompt_tokens": 640, "completion_tokens": 62, "cost": 0.0002, "prompt_version": "asl-ta-2026-11-v1",
    }


def timed(op: Callable[[int], object], n: int) -> list[float]:
    """Per-call latencies in milliseconds."""
    samples = []
    for i in range(n):
        start = time.perf_counter()
        op(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return (ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            statistics.fmean(ordered))


def bench_postgres(admin: str, ops: int) -> dict[str, list[float]]:
    url = database.create_database(admin)
    engine = create_engine(url, pool_size=2, pool_pre_ping=True)  # as the app configures it
    try:
        upgrade(url)
        cache = PostgresCache(engine, counter_flush_seconds=3600)
        keys = [f"asl:llm:{uuid.uuid4().hex}{uuid.uuid4().hex}" for _ in range(ops)]
        values = [llm_value(i) for i in range(ops)]
        timed(lambda i: cache.set(keys[i], values[i], ttl=3600), min(500, ops))   # warm up
        timed(lambda i: cache.get(keys[i]), min(500, ops))
        result = {
            "set": timed(lambda i: cache.set(keys[i], values[i], ttl=3600), ops),
            "get (hit)": timed(lambda i: cache.get(keys[i]), ops),
            "get (miss)": timed(lambda i: cache.get(keys[i] + "-absent"), ops),
        }
        cache._take_pending()   # counters are not part of the benchmark's database's life
        return result
    finally:
        engine.dispose()
        database.drop_database(admin, url)


def bench_redis(redis_url: str, ops: int) -> dict[str, list[float]] | None:
    try:
        import redis
    except ImportError:
        return None
    client = redis.Redis.from_url(redis_url)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"redis not reachable at {redis_url}: {exc}", file=sys.stderr)
        return None
    prefix = f"litscreen-bench:{uuid.uuid4().hex}:"
    keys = [f"{prefix}{i}" for i in range(ops)]
    values = [json.dumps(llm_value(i)) for i in range(ops)]
    try:
        timed(lambda i: client.set(keys[i], values[i], ex=3600), min(500, ops))
        timed(lambda i: client.get(keys[i]), min(500, ops))
        return {
            "set": timed(lambda i: client.set(keys[i], values[i], ex=3600), ops),
            "get (hit)": timed(lambda i: json.loads(client.get(keys[i])), ops),
            "get (miss)": timed(lambda i: client.get(keys[i] + "-absent"), ops),
        }
    finally:
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    admin = database.admin_url()
    results = {"PostgreSQL (app_cache)": bench_postgres(admin, args.ops)}
    redis_results = bench_redis(args.redis, args.ops)
    if redis_results is not None:
        results["Redis"] = redis_results
    print(f"{args.ops} operations each, one client on loopback, ~1 KB JSON values (milliseconds)\n")
    print("| backend | operation | p50 ms | p99 ms | mean ms |")
    print("| --- | --- | ---: | ---: | ---: |")
    for backend, ops in results.items():
        for name, samples in ops.items():
            p50, p99, mean = summary(samples)
            print(f"| {backend} | {name} | {p50:.3f} | {p99:.3f} | {mean:.3f} |")
    pg = results["PostgreSQL (app_cache)"]
    get_p99 = summary(pg["get (hit)"])[1]
    set_p99 = summary(pg["set"])[1]
    ok = get_p99 <= GET_P99_TARGET_MS and set_p99 <= SET_P99_TARGET_MS
    print(f"\nPostgreSQL targets: get p99 {get_p99:.3f} <= {GET_P99_TARGET_MS} ms, "
          f"set p99 {set_p99:.3f} <= {SET_P99_TARGET_MS} ms: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
