"""Import fidelity: record type and source databases per record, one row per import with its per-database
identification counts (PRISMA), and human decisions on possible duplicates.

Revision ID: 0004_imports
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_imports"
down_revision = "0002_engine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("encoding", sa.String(length=20), nullable=True),
        sa.Column("source_label", sa.String(length=200), nullable=True),
        sa.Column("identified", sa.Integer(), nullable=False),
        sa.Column("imported", sa.Integer(), nullable=False),
        sa.Column("duplicates_in_file", sa.Integer(), nullable=False),
        sa.Column("duplicates_existing", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("by_database", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("warnings", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_import_batches_project_id_projects"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_batches")),
    )
    op.create_index(op.f("ix_import_batches_project_id"), "import_batches", ["project_id"], unique=False)
    op.create_table(
        "duplicate_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("kept_id", sa.BigInteger(), nullable=True),
        sa.Column("literature_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_duplicate_decisions_project_id_projects"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_duplicate_decisions_user_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_decisions")),
    )
    op.create_index(op.f("ix_duplicate_decisions_project_id"), "duplicate_decisions", ["project_id"], unique=False)
    op.add_column("literature", sa.Column("record_type", sa.String(length=40), nullable=True))
    op.add_column("literature", sa.Column("source_databases", postgresql.ARRAY(sa.Text()), nullable=False,
                                          server_default="{}"))
    op.add_column("literature", sa.Column("import_batch_id", sa.Integer(), nullable=True))
    op.create_foreign_key(op.f("fk_literature_import_batch_id_import_batches"), "literature", "import_batches",
                          ["import_batch_id"], ["id"], ondelete="SET NULL")
    op.create_index(op.f("ix_literature_import_batch_id"), "literature", ["import_batch_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_literature_import_batch_id"), table_name="literature")
    op.drop_constraint(op.f("fk_literature_import_batch_id_import_batches"), "literature", type_="foreignkey")
    op.drop_column("literature", "import_batch_id")
    op.drop_column("literature", "source_databases")
    op.drop_column("literature", "record_type")
    op.drop_index(op.f("ix_duplicate_decisions_project_id"), table_name="duplicate_decisions")
    op.drop_table("duplicate_decisions")
    op.drop_index(op.f("ix_import_batches_project_id"), table_name="import_batches")
    op.drop_table("import_batches")
