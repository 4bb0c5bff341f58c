"""Budgets, calibration and the drift check of a run.

Revision ID: 0007_budget
Revises: 0006
Create Date: 2026-12-06

``screening_tasks``: ``budget_usd`` (NULL: none), ``budget_spent_usd`` (what the run's LLM calls cost, settled
after each item, across every worker), ``budget_reserved_usd`` (estimated cost of the items in flight, reserved
before their calls), ``paused_reason``; ``is_calibration``, ``locked_config`` (models, parameters, prompt
version and hash), ``calibration_task_id`` and ``config_differences`` (a full run against the calibration it
follows); ``drift_report`` (test–retest of a fixed subset at the end of a long run).
``screening_batches.budget_reserved_usd``: the part of the task's reservation held by the batch's lease holder
(a new holder releases it, so a killed worker's reservation is not lost).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_budget"
down_revision = "0006"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(14, 6)


def upgrade() -> None:
    op.add_column("screening_tasks", sa.Column("budget_usd", MONEY, nullable=True))
    op.add_column("screening_tasks", sa.Column("budget_spent_usd", MONEY, nullable=False, server_default="0"))
    op.add_column("screening_tasks", sa.Column("budget_reserved_usd", MONEY, nullable=False, server_default="0"))
    op.add_column("screening_tasks", sa.Column("paused_reason", sa.String(40), nullable=True))
    op.add_column("screening_tasks", sa.Column("is_calibration", sa.Boolean(), nullable=False,
                                               server_default=sa.false()))
    op.add_column("screening_tasks", sa.Column("locked_config", postgresql.JSONB(), nullable=True))
    op.add_column("screening_tasks", sa.Column("calibration_task_id", sa.Integer(), nullable=True))
    op.add_column("screening_tasks", sa.Column("config_differences", postgresql.JSONB(), nullable=True))
    op.add_column("screening_tasks", sa.Column("drift_report", postgresql.JSONB(), nullable=True))
    op.create_foreign_key(op.f("fk_screening_tasks_calibration_task_id_screening_tasks"), "screening_tasks",
                          "screening_tasks", ["calibration_task_id"], ["id"], ondelete="SET NULL")
    op.create_check_constraint(op.f("ck_screening_tasks_budget"), "screening_tasks",
                               "budget_usd IS NULL OR budget_usd >= 0")
    op.create_check_constraint(op.f("ck_screening_tasks_paused_reason"), "screening_tasks",
                               "paused_reason IS NULL OR paused_reason IN ('budget')")
    op.add_column("screening_batches", sa.Column("budget_reserved_usd", MONEY, nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("screening_batches", "budget_reserved_usd")
    op.drop_constraint(op.f("ck_screening_tasks_paused_reason"), "screening_tasks", type_="check")
    op.drop_constraint(op.f("ck_screening_tasks_budget"), "screening_tasks", type_="check")
    op.drop_constraint(op.f("fk_screening_tasks_calibration_task_id_screening_tasks"), "screening_tasks",
                       type_="foreignkey")
    for column in ("drift_report", "config_differences", "calibration_task_id", "locked_config", "is_calibration",
                   "paused_reason", "budget_reserved_usd", "budget_spent_usd", "budget_usd"):
        op.drop_column("screening_tasks", column)
