"""Clinical-record extraction: datasets and their rows (an extraction task names its dataset in ``params``).

Revision ID: 0006
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0003_hostile"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dc_datasets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE",
                                                           name="fk_dc_datasets_owner_id_users"), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("file_format", sa.String(10), nullable=False),
        sa.Column("sheet", sa.String(255), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("columns", postgresql.JSONB(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("health", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dc_datasets"),
    )
    op.create_index("ix_dc_datasets_owner_id", "dc_datasets", ["owner_id"])
    op.create_index("ix_dc_datasets_sha256", "dc_datasets", ["sha256"])
    op.create_table(
        "dc_records",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("dc_datasets.id", ondelete="CASCADE",
                                                             name="fk_dc_records_dataset_id_dc_datasets"),
                  nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dc_records"),
        sa.UniqueConstraint("dataset_id", "row_index", name="uq_dc_records_dataset_id_row_index"),
    )
    op.create_index("ix_dc_records_dataset_id", "dc_records", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_dc_records_dataset_id", table_name="dc_records")
    op.drop_table("dc_records")
    op.drop_index("ix_dc_datasets_sha256", table_name="dc_datasets")
    op.drop_index("ix_dc_datasets_owner_id", table_name="dc_datasets")
    op.drop_table("dc_datasets")
