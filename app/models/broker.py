"""Broker (kombu) and result (Celery database backend) tables, declared here so Alembic owns them.

Names, sequences and columns match what kombu's SQLAlchemy transport and Celery's database backend map, so
their own ``create_all(checkfirst=True)`` finds them present. Migration 0003 adds the columns and indexes the
transport needs (queue expiry, visibility timeout, message TTL) and drops kombu's unused ones. ``kombu_binding``
is ours: the transport in ``tasks/broker/`` persists exchange bindings there so routing works across processes.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Sequence,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

from app.models.base import Base

metadata = Base.metadata

kombu_queue = Table(
    "kombu_queue",
    metadata,
    Column("id", Integer, Sequence("queue_id_sequence"), primary_key=True),
    Column("name", String(200), unique=True),
    # queue arguments (x-expires, x-message-ttl) and liveness, so expiry works across processes
    Column("expires_ms", Integer),
    Column("message_ttl_ms", Integer),
    Column("last_used_at", DateTime(timezone=True), server_default=func.now()),
)

kombu_message = Table(
    "kombu_message",
    metadata,
    Column("id", Integer, Sequence("message_id_sequence"), primary_key=True),
    Column("visible", Boolean),
    Column("timestamp", DateTime),
    Column("payload", Text, nullable=False),
    Column("version", SmallInteger, nullable=False),
    Column("queue_id", Integer, ForeignKey("kombu_queue.id", name="FK_kombu_message_queue", ondelete="CASCADE")),
    # visibility timeout: an unacked (invisible) message whose deadline passed is delivered again
    Column("deadline", DateTime(timezone=True)),
    Column("deliveries", Integer, nullable=False, server_default="0"),
    # per-queue message TTL (x-message-ttl)
    Column("expires_at", DateTime(timezone=True)),
    Index("ix_kombu_message_ready", "queue_id", "id", postgresql_where=text("visible")),
    Index("ix_kombu_message_deadline", "deadline", postgresql_where=text("NOT visible")),
)

kombu_binding = Table(
    "kombu_binding",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("exchange", String(200), nullable=False, index=True),
    Column("exchange_type", String(20), nullable=False),
    Column("routing_key", String(255), nullable=False),
    Column("pattern", String(255), nullable=False),
    Column("queue", String(200), nullable=False, index=True),
    UniqueConstraint("exchange", "routing_key", "pattern", "queue"),
)

celery_taskmeta = Table(
    "celery_taskmeta",
    metadata,
    Column("id", Integer, Sequence("task_id_sequence"), primary_key=True),
    Column("task_id", String(155), unique=True),
    Column("status", String(50)),
    Column("result", LargeBinary),
    Column("date_done", DateTime),
    Column("traceback", Text),
    Column("children", LargeBinary),
    Column("name", String(155)),
    Column("args", LargeBinary),
    Column("kwargs", LargeBinary),
    Column("worker", String(155)),
    Column("retries", Integer),
    Column("queue", String(155)),
    Column("stamps", LargeBinary),
)

celery_tasksetmeta = Table(
    "celery_tasksetmeta",
    metadata,
    Column("id", Integer, Sequence("taskset_id_sequence"), primary_key=True),
    Column("taskset_id", String(155), unique=True),
    Column("result", LargeBinary),
    Column("date_done", DateTime),
)
