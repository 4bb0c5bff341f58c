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

from app.services.metric_counters import BATCH_RECOVERIES, rollup_upsert

revision = "0008_metrics"
down_revision = "0006"
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
    op.execute(rollup_upsert("screening_results"))
    op.execute(
        "INSERT INTO metric_counters (metric, labels, value, updated_at) "
        f"SELECT '{BATCH_RECOVERIES}', '{{}}'::jsonb, coalesce(sum(greatest(attempts - 1, 0)), 0), now() "
        "FROM screening_batches")


def downgrade() -> None:
    op.drop_table("maintenance_runs")
    op.drop_table("metric_counters")
