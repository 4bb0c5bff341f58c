"""``GET /metrics`` scrape time at 10^4 vs 10^6 result rows: the counters rollup against the per-result queries.

Before issue 17 a scrape recomputed records, the record-time histogram and every LLM figure from
``screening_results`` (three statements over every result row and its ``decisions`` array). Now those counters
live in ``metric_counters``, added to by each checkpoint, and a scrape reads a few dozen rows. This fills a
throwaway database with N result rows (``generate_series``, two model decisions each), fills the rollup once as
the migration does, and times both: the whole ``/metrics`` page as served now (``render_metrics``), and the
three old per-result statements alone.

    .venv/bin/python bench/bench_metrics_scrape.py [--sizes 10000,1000000] [--repeat 15]

The database is created on the test suite's admin server (TEST_DATABASE_URL, else 127.0.0.1:5432, else embedded)
and dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from app.db.migrate import upgrade  # noqa: E402
from app.services.metric_counters import rollup_upsert  # noqa: E402
from tests.support import database  # noqa: E402  (same provisioning as the test suite)

# the per-result statements a scrape ran before issue 17 (app/metrics.py at 8f3c78b)
OLD_SCRAPE = {
    "records by status": "SELECT status, count(*) FROM screening_results GROUP BY status",
    "record time histogram": """
SELECT width_bucket(duration_ms / 1000.0, ARRAY[0.5, 1, 2.5, 5, 10, 20, 30, 60, 120]::float8[]), count(*),
       coalesce(sum(duration_ms), 0) / 1000.0
FROM screening_results WHERE duration_ms IS NOT NULL GROUP BY 1""",
    "LLM by model": """
SELECT coalesce(d->>'provider', split_part(d->>'model', ':', 1)) AS provider, coalesce(d->>'model', '') AS model,
       count(*) FILTER (WHERE d->'cached' IS DISTINCT FROM 'true'::jsonb),
       count(*) FILTER (WHERE d->'cached' = 'true'::jsonb),
       count(*) FILTER (WHERE coalesce(d->>'error', '') <> ''),
       coalesce(sum(CASE WHEN jsonb_typeof(d->'prompt_tokens') = 'number' THEN (d->>'prompt_tokens')::numeric END), 0),
       coalesce(sum(CASE WHEN jsonb_typeof(d->'completion_tokens') = 'number'
                         THEN (d->>'completion_tokens')::numeric END), 0),
       coalesce(sum(CASE WHEN jsonb_typeof(d->'cost') = 'number' THEN (d->>'cost')::numeric END), 0)
FROM screening_results r CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(r.decisions) = 'array' THEN r.decisions ELSE '[]'::jsonb END) AS d
GROUP BY 1, 2""",
}

FILL = """
INSERT INTO screening_results (task_id, item_id, literature_id, batch_index, decisions, llm_decision, final_decision,
                               has_conflict, manual_review_required, status, prompt_tokens, completion_tokens,
                               cost_estimate, duration_ms, created_at)
SELECT CAST(:task AS integer), g, NULL, g / 100,
       jsonb_build_array(
         jsonb_build_object('provider', 'sim', 'model', 'model-a', 'decision', 'include', 'prompt_tokens', 640,
                            'completion_tokens', 60, 'cost', 0.0002, 'cached', g % 7 = 0, 'error', NULL),
         jsonb_build_object('provider', 'sim', 'model', 'model-b', 'decision', 'exclude', 'prompt_tokens', 640,
                            'completion_tokens', 70, 'cost', 0.0003, 'cached', g % 7 = 0,
                            'error', CASE WHEN g % 101 = 0 THEN 'timeout' END)),
       'conflict', 'conflict', true, true, CASE WHEN g % 101 = 0 THEN 'failed' ELSE 'success' END, 1280, 130,
       0.0005, 500 + (g % 9000), now()
FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g
"""


def setup(url: str) -> int:
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        user = conn.execute(text("INSERT INTO users (name, is_admin, created_at) VALUES ('bench', false, now()) "
                                 "RETURNING id")).scalar_one()
        project = conn.execute(text(
            "INSERT INTO projects (name, owner_id, picos, created_at, updated_at) "
            "VALUES ('bench', :u, '{}', now(), now()) RETURNING id"), {"u": user}).scalar_one()
        task = conn.execute(text(
            "INSERT INTO screening_tasks (project_id, owner_id, task_type, status, total_items, total_batches, "
            "batch_size, model_config, processed_items, success_items, failed_items, conflict_items, prompt_tokens, "
            "completion_tokens, cost_estimate, attempt, cancel_requested, created_at, updated_at) VALUES "
            "(:p, :u, 'title_abstract', 'completed', 0, 0, 100, '{}', 0, 0, 0, 0, 0, 0, 0, 1, false, now(), now()) "
            "RETURNING id"), {"p": project, "u": user}).scalar_one()
    engine.dispose()
    return int(task)


def fill(url: str, task: int, start: int, stop: int) -> float:
    """Insert result rows start..stop (in chunks), refresh the rollup from scratch; seconds spent."""
    engine = create_engine(url, poolclass=NullPool)
    began = time.perf_counter()
    chunk = 200_000
    for low in range(start, stop + 1, chunk):
        with engine.begin() as conn:
            conn.execute(text(FILL), {"task": task, "start": low, "stop": min(stop, low + chunk - 1)})
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM metric_counters"))
        conn.execute(text(rollup_upsert("screening_results")))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE screening_results"))
    engine.dispose()
    return time.perf_counter() - began


def time_scrape(app, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    from app.metrics import render_metrics

    render_metrics(app)  # warm the pool and the planner
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        body, _content_type = render_metrics(app)
        samples.append((time.perf_counter() - began) * 1000)
        assert b"litscreen_records_processed_total" in body
    return samples


def time_old(url: str, repeat: int) -> list[float]:
    engine = create_engine(url)
    samples = []
    with engine.connect() as conn:
        for statement in OLD_SCRAPE.values():  # warm
            conn.execute(text(statement)).all()
        for _ in range(repeat):
            began = time.perf_counter()
            for statement in OLD_SCRAPE.values():
                conn.execute(text(statement)).all()
            samples.append((time.perf_counter() - began) * 1000)
    engine.dispose()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000", help="result rows, comma-separated, ascending")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    from app import create_app

    admin = database.admin_url()
    url = database.create_database(admin)
    try:
        upgrade(url)
        task = setup(url)
        app = create_app({"DATABASE_URL": url, "TESTING": True})
        print(f"{'result rows':>12} | {'fill s':>7} | {'scrape now: median ms':>21} | {'p95 ms':>7} | "
              f"{'old per-result statements: median ms':>36}")
        done = 0
        for size in sizes:
            seconds = fill(url, task, done + 1, size)
            done = size
            now = time_scrape(app, args.repeat)
            old = time_old(url, max(3, args.repeat // 3))
            p95 = sorted(now)[min(len(now) - 1, int(len(now) * 0.95))]
            print(f"{size:>12,} | {seconds:>7.1f} | {statistics.median(now):>21.1f} | {p95:>7.1f} | "
                  f"{statistics.median(old):>36.1f}", flush=True)
        from app.extensions import db

        with app.app_context():
            db.engine.dispose()
    finally:
        database.drop_database(admin, url)


if __name__ == "__main__":
    main()
