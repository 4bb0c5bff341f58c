"""What operators read: Prometheus counters that never go down, and the last run of each beat maintenance job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Double, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class MetricCounter(Base):
    """One monotonic counter series (metric name + labels), added to by the checkpoint that did the work.

    Not keyed by project or task, so deleting a project never lowers a counter (Prometheus ``rate()`` needs that).
    """

    __tablename__ = "metric_counters"

    metric: Mapped[str] = mapped_column(String(100), primary_key=True)
    labels: Mapped[Any] = mapped_column(JSONB, primary_key=True)
    value: Mapped[float] = mapped_column(Double, default=0.0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default="now()")


class MaintenanceRun(Base):
    """The last run of one beat maintenance job: beat's heartbeat as ``litscreen doctor`` reads it."""

    __tablename__ = "maintenance_runs"

    job: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    runs: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")
    last_outcome: Mapped[str | None] = mapped_column(Text)
