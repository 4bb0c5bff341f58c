"""audit sample of machine exclusions

Revision ID: 0011
Revises: 0005
Create Date: 2026-12-01

``screening_results.audit_sampled_at`` marks the results drawn into a task's random audit sample.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('screening_results', sa.Column('audit_sampled_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('screening_results', 'audit_sampled_at')
