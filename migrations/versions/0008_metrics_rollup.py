"""metric counters that never go down; the last run of each beat maintenance job

Revision ID: 0008_metrics
Revises: 0006
Create Date: 2026-12-06

``metric_counters`` holds the monotonic ``/metrics`` counters (records, record screening time, LLM calls,
tokens, cost, batch recoveries), added to by each checkpoint; it is filled here once from the result and batch
rows that exist. ``maintenance_runs`` records when each beat job last ran (``litscreen doctor``'s beat check).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# app/services/metric_counters.rollup_upsert("screening_results") as of this revision (frozen: the migration must
# not change when the code does)
BACKFILL_RESULTS = """
INSERT INTO metric_counters (metric, labels, value, updated_at)
SELECT r.metric, r.labels, r.value, now() FROM (
SELECT metric, labels, sum(value) AS value FROM (
    SELECT 'records_processed' AS metric, jsonb_build_object('status', coalesce(s.status, '')) AS labels,
           1::float8 AS value
    FROM screening_results s
    UNION ALL
    SELECT 'record_screening_seconds_bucket', jsonb_build_object('bucket', width_bucket(s.duration_ms / 1000.0, ARRAY[0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0]::float8[])),
           1::float8
    FROM screening_results s WHERE s.duration_ms IS NOT NULL
    UNION ALL
    SELECT 'record_screening_seconds_sum', '{}'::jsonb, s.duration_ms / 1000.0
    FROM screening_results s WHERE s.duration_ms IS NOT NULL
    UNION ALL
    SELECT m.metric,
           jsonb_build_object('provider', coalesce(d->>'provider', split_part(d->>'model', ':', 1), ''),
                              'model', coalesce(d->>'model', '')) || m.extra,
           m.value
    FROM screening_results s
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(s.decisions) = 'array' THEN s.decisions ELSE '[]'::jsonb END) AS d
    CROSS JOIN LATERAL (VALUES
            ('llm_calls', '{}'::jsonb, CASE WHEN d->'cached' IS DISTINCT FROM 'true'::jsonb THEN 1 ELSE 0 END),
            ('llm_cached_answers', '{}'::jsonb, CASE WHEN d->'cached' = 'true'::jsonb THEN 1 ELSE 0 END),
            ('llm_errors', '{}'::jsonb, CASE WHEN coalesce(d->>'error', '') <> '' THEN 1 ELSE 0 END),
            ('llm_tokens', '{"kind": "prompt"}'::jsonb, CASE WHEN jsonb_typeof(d->'prompt_tokens') = 'number' THEN (d->>'prompt_tokens')::float8 ELSE 0 END),
            ('llm_tokens', '{"kind": "completion"}'::jsonb, CASE WHEN jsonb_typeof(d->'completion_tokens') = 'number' THEN (d->>'completion_tokens')::float8 ELSE 0 END),
            ('llm_cost_usd', '{}'::jsonb, CASE WHEN jsonb_typeof(d->'cost') = 'number' THEN (d->>'cost')::float8 ELSE 0 END)
    ) AS m(metric, extra, value)
) AS series
GROUP BY metric, labels
ORDER BY metric, labels
) AS r 
ORDER BY r.metric, r.labels
ON CONFLICT (metric, labels) DO UPDATE SET value = metric_counters.value + EXCLUDED.value, updated_at = now()
"""

revision = "0008_metrics"
down_revision = "0007_budget"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_counters",
        sa.Column("metric", sa.String(100), nullable=False),
        sa.Column("labels", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("value", sa.Double(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("metric", "labels", name=op.f("pk_metric_counters")),
    )
    op.create_table(
        "maintenance_runs",
        sa.Column("job", sa.String(200), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("runs", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column("last_outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_maintenance_runs")),
    )
    # what the existing rows have counted so far (one pass; from now on each checkpoint adds its own rows)
    op.execute(BACKFILL_RESULTS)
    op.execute(
        "INSERT INTO metric_counters (metric, labels, value, updated_at) "
        "SELECT 'batch_recoveries', '{}'::jsonb, coalesce(sum(greatest(attempts - 1, 0)), 0), now() "
        "FROM screening_batches")


def downgrade() -> None:
    op.drop_table("maintenance_runs")
    op.drop_table("metric_counters")
