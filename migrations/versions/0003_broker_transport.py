"""Schema changes for the broker transport (``tasks/broker/``).

Queue expiry and message TTL columns on ``kombu_queue``; visibility timeout (deadline, delivery count) and
message expiry on ``kombu_message``; a partial index that serves the fetch (``queue_id, id WHERE visible``) and
one for reclaiming overdue unacked messages. kombu's own indexes on ``visible`` and ``timestamp`` are dropped:
the transport never reads by them and each costs a write per message. Messages go with their queue.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("kombu_queue", sa.Column("expires_ms", sa.Integer(), nullable=True))
    op.add_column("kombu_queue", sa.Column("message_ttl_ms", sa.Integer(), nullable=True))
    op.add_column("kombu_queue", sa.Column("last_used_at", sa.DateTime(timezone=True),
                                           server_default=sa.text("now()"), nullable=True))
    op.add_column("kombu_message", sa.Column("deadline", sa.DateTime(timezone=True), nullable=True))
    op.add_column("kombu_message", sa.Column("deliveries", sa.Integer(), server_default="0", nullable=False))
    op.add_column("kombu_message", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_index("ix_kombu_message_timestamp_id", table_name="kombu_message")
    op.drop_index("ix_kombu_message_timestamp", table_name="kombu_message")
    op.drop_index("ix_kombu_message_visible", table_name="kombu_message")
    op.create_index("ix_kombu_message_ready", "kombu_message", ["queue_id", "id"], unique=False,
                    postgresql_where=sa.text("visible"))
    op.create_index("ix_kombu_message_deadline", "kombu_message", ["deadline"], unique=False,
                    postgresql_where=sa.text("NOT visible"))
    op.drop_constraint("FK_kombu_message_queue", "kombu_message", type_="foreignkey")
    op.create_foreign_key("FK_kombu_message_queue", "kombu_message", "kombu_queue", ["queue_id"], ["id"],
                          ondelete="CASCADE")


def downgrade() -> None:
    op.drop_constraint("FK_kombu_message_queue", "kombu_message", type_="foreignkey")
    op.create_foreign_key("FK_kombu_message_queue", "kombu_message", "kombu_queue", ["queue_id"], ["id"])
    op.drop_index("ix_kombu_message_deadline", table_name="kombu_message")
    op.drop_index("ix_kombu_message_ready", table_name="kombu_message")
    op.create_index("ix_kombu_message_visible", "kombu_message", ["visible"], unique=False)
    op.create_index("ix_kombu_message_timestamp", "kombu_message", ["timestamp"], unique=False)
    op.create_index("ix_kombu_message_timestamp_id", "kombu_message", ["timestamp", "id"], unique=False)
    op.drop_column("kombu_message", "expires_at")
    op.drop_column("kombu_message", "deliveries")
    op.drop_column("kombu_message", "deadline")
    op.drop_column("kombu_queue", "last_used_at")
    op.drop_column("kombu_queue", "message_ttl_ms")
    op.drop_column("kombu_queue", "expires_ms")
