"""Full texts attached to records (text per page), for the full-text screening task kind.

Revision ID: 0005_fulltexts
Revises: 0004_imports
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_fulltexts"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fulltexts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("literature_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("chars", sa.Integer(), nullable=False),
        sa.Column("page_texts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("text_available", sa.Boolean(), nullable=False),
        sa.Column("extractor", sa.String(length=60), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["literature_id"], ["literature.id"],
                                name=op.f("fk_fulltexts_literature_id_literature"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_fulltexts_project_id_projects"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fulltexts")),
        sa.UniqueConstraint("literature_id", name=op.f("uq_fulltexts_literature_id")),
    )
    op.create_index(op.f("ix_fulltexts_project_id"), "fulltexts", ["project_id"], unique=False)
    op.create_index(op.f("ix_fulltexts_sha256"), "fulltexts", ["sha256"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_fulltexts_sha256"), table_name="fulltexts")
    op.drop_index(op.f("ix_fulltexts_project_id"), table_name="fulltexts")
    op.drop_table("fulltexts")
