"""Roles, expiring tokens, and at most one active task per project and kind.

Revision ID: 0003_hostile
Revises: 0011
Create Date: 2026-12-01

- ``users.is_admin``: admins may manage the shared cache and see fleet-wide figures;
- ``api_tokens.expires_at``: a token past it is refused (401);
- a partial unique index on ``screening_tasks (project_id, task_type)`` over the active statuses, so two
  concurrent start requests cannot both create a run (the loser gets 409). Older duplicates, if any, keep the
  newest active task and mark the others cancelled first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_hostile"
down_revision = "0005_fulltexts"
branch_labels = None
depends_on = None

INDEX = "uq_screening_tasks_one_active_per_project_kind"
ACTIVE = "status IN ('pending', 'running', 'paused')"


def upgrade() -> None:
    op.add_column("users", sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(f"""
        UPDATE screening_tasks SET status = 'cancelled', cancel_requested = true,
               error = 'cancelled: a newer run of the same project was active'
        WHERE {ACTIVE} AND id NOT IN (
            SELECT max(id) FROM screening_tasks WHERE {ACTIVE} GROUP BY project_id, task_type)
    """)
    op.create_index(INDEX, "screening_tasks", ["project_id", "task_type"], unique=True,
                    postgresql_where=sa.text(ACTIVE))


def downgrade() -> None:
    op.drop_index(INDEX, table_name="screening_tasks")
    op.drop_column("api_tokens", "expires_at")
    op.drop_column("users", "is_admin")
