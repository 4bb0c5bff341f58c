"""Schema changes for the screening engine (owned by the engine work).

``screening_batches.claimed_at``: when a delivery last won the batch's lease. The sweeper compares claim order
with dispatch order to spot a message that a killed worker had fetched but never started.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("screening_batches", sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("screening_batches", "claimed_at")
