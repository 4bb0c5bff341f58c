"""Monotonic counters for ``/metrics``: the ``metric_counters`` rollup, added to by the statements that do the work.

Prometheus' ``rate()`` needs counters that never go down, and a scrape should not read every result row. So the
figures that only grow are kept in ``metric_counters`` (one row per metric and label set), added to in the same
statement as the work they count: the engine's checkpoint (``app/services/engine/checkpoint.py``) rolls up the
result rows it inserted — records by status, record screening time buckets, LLM calls, cached answers, errors,
tokens and cost per provider and model — and a claim that is a batch's second or later delivery adds a recovery.
Each checkpoint also carries the commit time of the delivery's previous checkpoint (the last one of a delivery is
not counted). The rows are not keyed by project, so deleting a project lowers nothing. A scrape reads a few dozen rows.

Locks: every writer takes the counter rows in (metric, labels) order, after its batch and task rows, so concurrent
checkpoints queue behind each other for the few microseconds to commit but never deadlock.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

RECORD_BUCKETS_SECONDS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
CHECKPOINT_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RECORDS_PROCESSED = "records_processed"
RECORD_SECONDS_BUCKET = "record_screening_seconds_bucket"  # labels {"bucket": i}: observations in bucket i
RECORD_SECONDS_SUM = "record_screening_seconds_sum"
BATCH_RECOVERIES = "batch_recoveries"
CHECKPOINT_SECONDS_BUCKET = "checkpoint_commit_seconds_bucket"  # labels {"bucket": i}
CHECKPOINT_SECONDS_SUM = "checkpoint_commit_seconds_sum"
LLM_METRICS = ("llm_calls", "llm_cached_answers", "llm_errors", "llm_tokens", "llm_cost_usd")

def _array(bounds: tuple[float, ...]) -> str:
    return "ARRAY[" + ", ".join(repr(float(b)) for b in bounds) + "]::float8[]"


_BOUNDS = _array(RECORD_BUCKETS_SECONDS)
# the commit time (ms) of the delivery's previous checkpoint, which each checkpoint statement carries as a parameter
PREVIOUS_CHECKPOINT_SERIES = f"""
    UNION ALL
    SELECT '{CHECKPOINT_SECONDS_BUCKET}',
           jsonb_build_object('bucket', width_bucket(CAST(:previous_ms AS float8) / 1000.0,
                                                     {_array(CHECKPOINT_BUCKETS_SECONDS)})), 1::float8
    WHERE CAST(:previous_ms AS float8) IS NOT NULL
    UNION ALL
    SELECT '{CHECKPOINT_SECONDS_SUM}', '{{}}'::jsonb, CAST(:previous_ms AS float8) / 1000.0
    WHERE CAST(:previous_ms AS float8) IS NOT NULL"""
_NUMBER = "CASE WHEN jsonb_typeof(d->'{key}') = 'number' THEN (d->>'{key}')::float8 ELSE 0 END"


def rollup_select(source: str, extra_series: str = "") -> str:
    """SELECT (metric, labels, value) rows summing the result rows of relation ``source`` (a CTE or a table
    with ``status``, ``decisions`` and ``duration_ms``), one row per counter series, in lock order.
    ``extra_series``: more ``UNION ALL SELECT metric, labels, value`` parts to add in the same statement."""
    llm_values = ",\n            ".join([
        "('llm_calls', '{}'::jsonb, CASE WHEN d->'cached' IS DISTINCT FROM 'true'::jsonb THEN 1 ELSE 0 END)",
        "('llm_cached_answers', '{}'::jsonb, CASE WHEN d->'cached' = 'true'::jsonb THEN 1 ELSE 0 END)",
        "('llm_errors', '{}'::jsonb, CASE WHEN coalesce(d->>'error', '') <> '' THEN 1 ELSE 0 END)",
        "('llm_tokens', '{\"kind\": \"prompt\"}'::jsonb, " + _NUMBER.format(key="prompt_tokens") + ")",
        "('llm_tokens', '{\"kind\": \"completion\"}'::jsonb, " + _NUMBER.format(key="completion_tokens") + ")",
        "('llm_cost_usd', '{}'::jsonb, " + _NUMBER.format(key="cost") + ")",
    ])
    return f"""
SELECT metric, labels, sum(value) AS value FROM (
    SELECT '{RECORDS_PROCESSED}' AS metric, jsonb_build_object('status', coalesce(s.status, '')) AS labels,
           1::float8 AS value
    FROM {source} s
    UNION ALL
    SELECT '{RECORD_SECONDS_BUCKET}', jsonb_build_object('bucket', width_bucket(s.duration_ms / 1000.0, {_BOUNDS})),
           1::float8
    FROM {source} s WHERE s.duration_ms IS NOT NULL
    UNION ALL
    SELECT '{RECORD_SECONDS_SUM}', '{{}}'::jsonb, s.duration_ms / 1000.0
    FROM {source} s WHERE s.duration_ms IS NOT NULL
    UNION ALL
    SELECT m.metric,
           jsonb_build_object('provider', coalesce(d->>'provider', split_part(d->>'model', ':', 1), ''),
                              'model', coalesce(d->>'model', '')) || m.extra,
           m.value
    FROM {source} s
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(s.decisions) = 'array' THEN s.decisions ELSE '[]'::jsonb END) AS d
    CROSS JOIN LATERAL (VALUES
            {llm_values}
    ) AS m(metric, extra, value){extra_series}
) AS series
GROUP BY metric, labels
ORDER BY metric, labels
"""


def rollup_upsert(source: str, guard: str = "", extra_series: str = "") -> str:
    """INSERT … ON CONFLICT adding ``source``'s roll-up to ``metric_counters`` (``guard``: an extra WHERE on the
    grouped rows, e.g. to order it after another CTE; ``extra_series``: see :func:`rollup_select`)."""
    where = f"WHERE {guard}" if guard else ""
    return f"""
INSERT INTO metric_counters (metric, labels, value, updated_at)
SELECT r.metric, r.labels, r.value, now() FROM ({rollup_select(source, extra_series)}) AS r {where}
ORDER BY r.metric, r.labels
ON CONFLICT (metric, labels) DO UPDATE SET value = metric_counters.value + EXCLUDED.value, updated_at = now()
"""


def add(conn: Connection, metric: str, amount: float = 1.0, labels: dict[str, Any] | None = None) -> None:
    """Add ``amount`` to one counter series, in the caller's transaction."""
    conn.execute(text(
        "INSERT INTO metric_counters (metric, labels, value, updated_at) VALUES (:m, CAST(:l AS jsonb), :v, now()) "
        "ON CONFLICT (metric, labels) DO UPDATE SET value = metric_counters.value + EXCLUDED.value, "
        "updated_at = now()"), {"m": metric, "l": json.dumps(labels or {}, sort_keys=True), "v": float(amount)})


def read_all(conn: Connection) -> list[tuple[str, dict[str, Any], float]]:
    """Every counter series: (metric, labels, value)."""
    return [(row.metric, dict(row.labels or {}), float(row.value))
            for row in conn.execute(text("SELECT metric, labels, value FROM metric_counters ORDER BY 1, 2"))]
