"""Generic engine schema: results keyed by (task, item), task owner and params, llm_decision, status CHECKs.

- ``screening_results``: ``item_id`` (backfilled from ``literature_id``), unique per task instead of
  ``(task_id, literature_id)``; ``literature_id`` nullable (non-literature kinds); ``fields`` (per-field extraction
  output), ``exclusion_reason``; ``llm_decision`` — the machine's combined decision, backfilled: the final decision
  of unreviewed rows, recomputed from the models' decisions under the task's rule for reviewed ones.
- ``screening_batches.literature_ids`` → ``item_ids``.
- ``screening_tasks``: ``project_id`` nullable, ``owner_id`` (backfilled from the project's owner), ``params``.
- CHECK constraints on the status columns (the enums of ``app/models/statuses.py``).

Revision ID: 0002_engine (the integrator relinks the chain; this id is unique on purpose: ``0002`` was taken)
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_engine"
down_revision = "0005"
branch_labels = None
depends_on = None

TASK_STATUSES = ("pending", "running", "paused", "completed", "completed_with_errors", "failed", "cancelled")
BATCH_STATUSES = ("pending", "running", "done", "failed", "cancelled")
RESULT_STATUSES = ("success", "failed")


def _in(values: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


# The machine's decision of a reviewed row, from its models' decisions and the task's rule (app/llm/decision.py).
BACKFILL_LLM_DECISION = """
UPDATE screening_results r SET llm_decision = CASE
    WHEN r.status = 'failed' THEN NULL
    WHEN r.review_decision IS NULL THEN r.final_decision
    ELSE (
        SELECT CASE
            WHEN count(*) = 0 THEN NULL
            WHEN coalesce(t.model_config ->> 'decision_rule', 'unanimous') = 'majority' THEN CASE
                WHEN 2 * count(*) FILTER (WHERE d ->> 'decision' = 'include') > count(*) THEN 'include'
                WHEN 2 * count(*) FILTER (WHERE d ->> 'decision' = 'exclude') > count(*) THEN 'exclude'
                ELSE 'conflict' END
            ELSE CASE
                WHEN count(*) FILTER (WHERE d ->> 'decision' = 'include') = count(*) THEN 'include'
                WHEN count(*) FILTER (WHERE d ->> 'decision' = 'exclude') = count(*) THEN 'exclude'
                ELSE 'conflict' END
            END
        FROM jsonb_array_elements(coalesce(r.decisions, '[]'::jsonb)) AS d
        WHERE d ->> 'decision' IS NOT NULL)
    END
FROM screening_tasks t WHERE t.id = r.task_id
"""


def upgrade() -> None:
    # results: (task_id, item_id)
    op.add_column("screening_results", sa.Column("item_id", sa.BigInteger(), nullable=True))
    op.execute("UPDATE screening_results SET item_id = literature_id")
    op.alter_column("screening_results", "item_id", nullable=False)
    op.drop_constraint("uq_screening_results_task_id_literature_id", "screening_results", type_="unique")
    op.create_unique_constraint(op.f("uq_screening_results_task_id_item_id"), "screening_results",
                                ["task_id", "item_id"])
    op.alter_column("screening_results", "literature_id", nullable=True)
    op.add_column("screening_results", sa.Column("llm_decision", sa.String(length=20), nullable=True))
    op.add_column("screening_results", sa.Column("exclusion_reason", sa.Text(), nullable=True))
    op.add_column("screening_results",
                  sa.Column("fields", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.execute(BACKFILL_LLM_DECISION)
    op.create_check_constraint(op.f("ck_screening_results_status"), "screening_results", _in(RESULT_STATUSES))

    # batches: item ids
    op.alter_column("screening_batches", "literature_ids", new_column_name="item_ids")
    op.create_check_constraint(op.f("ck_screening_batches_status"), "screening_batches", _in(BATCH_STATUSES))

    # tasks: owner, params, optional project
    op.add_column("screening_tasks", sa.Column("owner_id", sa.Integer(), nullable=True))
    op.execute("UPDATE screening_tasks t SET owner_id = p.owner_id FROM projects p WHERE p.id = t.project_id")
    op.alter_column("screening_tasks", "owner_id", nullable=False)
    op.create_foreign_key(op.f("fk_screening_tasks_owner_id_users"), "screening_tasks", "users", ["owner_id"],
                          ["id"], ondelete="CASCADE")
    op.create_index(op.f("ix_screening_tasks_owner_id"), "screening_tasks", ["owner_id"], unique=False)
    op.add_column("screening_tasks", sa.Column("params", postgresql.JSONB(astext_type=sa.Text()),
                                               server_default=sa.text("'{}'::jsonb"), nullable=False))
    op.alter_column("screening_tasks", "project_id", nullable=True)
    op.create_check_constraint(op.f("ck_screening_tasks_status"), "screening_tasks", _in(TASK_STATUSES))


def downgrade() -> None:
    op.drop_constraint(op.f("ck_screening_tasks_status"), "screening_tasks", type_="check")
    op.execute("DELETE FROM screening_tasks WHERE project_id IS NULL")
    op.alter_column("screening_tasks", "project_id", nullable=False)
    op.drop_column("screening_tasks", "params")
    op.drop_index(op.f("ix_screening_tasks_owner_id"), table_name="screening_tasks")
    op.drop_constraint(op.f("fk_screening_tasks_owner_id_users"), "screening_tasks", type_="foreignkey")
    op.drop_column("screening_tasks", "owner_id")

    op.drop_constraint(op.f("ck_screening_batches_status"), "screening_batches", type_="check")
    op.alter_column("screening_batches", "item_ids", new_column_name="literature_ids")

    op.drop_constraint(op.f("ck_screening_results_status"), "screening_results", type_="check")
    op.drop_column("screening_results", "fields")
    op.drop_column("screening_results", "exclusion_reason")
    op.drop_column("screening_results", "llm_decision")
    op.execute("DELETE FROM screening_results WHERE literature_id IS NULL")
    op.alter_column("screening_results", "literature_id", nullable=False)
    op.drop_constraint(op.f("uq_screening_results_task_id_item_id"), "screening_results", type_="unique")
    op.create_unique_constraint(op.f("uq_screening_results_task_id_literature_id"), "screening_results",
                                ["task_id", "literature_id"])
    op.drop_column("screening_results", "item_id")
