"""audit sample of machine exclusions; fleet-wide provider limits

Revision ID: 0011
Revises: 0004_imports
Create Date: 2026-12-01

``screening_results.audit_sampled_at`` marks the results drawn into a task's random audit sample;
``llm_rate_slots`` and ``llm_inflight`` hold the fleet-wide requests-per-minute and in-flight limits.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0004_imports'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('screening_results', sa.Column('audit_sampled_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('llm_rate_slots',
                    sa.Column('limiter', sa.String(length=300), nullable=False),
                    sa.Column('next_slot', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('limiter', name=op.f('pk_llm_rate_slots')))
    op.create_table('llm_inflight',
                    sa.Column('holder', sa.String(length=36), nullable=False),
                    sa.Column('limiter', sa.String(length=300), nullable=False),
                    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('holder', name=op.f('pk_llm_inflight')))
    op.create_index(op.f('ix_llm_inflight_limiter'), 'llm_inflight', ['limiter'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_llm_inflight_limiter'), table_name='llm_inflight')
    op.drop_table('llm_inflight')
    op.drop_table('llm_rate_slots')
    op.drop_column('screening_results', 'audit_sampled_at')
