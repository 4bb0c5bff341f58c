"""Task runs of every kind: the task, its checkpointed batches (with leases) and one result row per item.

A task covers items of one kind (``task_type``, see ``app/services/kinds/``): literature records for the
literature kinds (which also fill ``literature_id``), dataset rows for clinical extraction. Statuses are the enums
of ``app.models.statuses``, enforced by CHECK constraints.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow
from app.models.statuses import BatchStatus, PausedReason, ResultStatus, TaskStatus, check_constraint_sql

# at most one task per project and kind that is pending, running or paused (a partial unique index)
ONE_ACTIVE_TASK_INDEX = "uq_screening_tasks_one_active_per_project_kind"

def _project_owner(context: Any) -> int | None:
    """Default ``owner_id``: the owner of the task's project (tasks without a project must name their owner)."""
    project_id = context.get_current_parameters().get("project_id")
    if project_id is None:
        return None
    return context.connection.scalar(text("SELECT owner_id FROM projects WHERE id = :id"), {"id": project_id})


class ScreeningTask(Base):
    __tablename__ = "screening_tasks"
    __table_args__ = (
        CheckConstraint(check_constraint_sql("status", TaskStatus), name="status"),
        CheckConstraint("budget_usd IS NULL OR budget_usd >= 0", name="budget"),
        CheckConstraint(f"paused_reason IS NULL OR {check_constraint_sql('paused_reason', PausedReason)}",
                        name="paused_reason"),
        Index(ONE_ACTIVE_TASK_INDEX, "project_id", "task_type", unique=True,
              postgresql_where=text("status IN ('pending', 'running', 'paused')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # literature kinds belong to a project; other kinds (clinical extraction) only to their owner
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True,
                                          default=_project_owner)
    task_type: Mapped[str] = mapped_column(String(40), default="title_abstract")
    status: Mapped[str] = mapped_column(String(30), default=TaskStatus.PENDING, index=True)
    # kind-specific parameters (e.g. an explicit item list, an extraction schema)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    total_items: Mapped[int] = mapped_column(Integer, default=0)
    total_batches: Mapped[int] = mapped_column(Integer, default=0)
    batch_size: Mapped[int] = mapped_column(Integer, default=100)
    # snapshot of providers, models and prompt version at start, so a later config change cannot alter a run
    model_config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    processed_items: Mapped[int] = mapped_column(Integer, default=0)
    success_items: Mapped[int] = mapped_column(Integer, default=0)
    failed_items: Mapped[int] = mapped_column(Integer, default=0)
    conflict_items: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_estimate: Mapped[Decimal] = mapped_column(Numeric(14, 6), default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    chord_id: Mapped[str | None] = mapped_column(String(155))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    error: Mapped[str | None] = mapped_column(Text)
    # budget (USD; NULL: none): spent = settled cost of the calls made, reserved = estimates of the items in flight
    budget_usd: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))
    budget_spent_usd: Mapped[Decimal] = mapped_column(Numeric(14, 6), default=0, server_default="0")
    budget_reserved_usd: Mapped[Decimal] = mapped_column(Numeric(14, 6), default=0, server_default="0")
    paused_reason: Mapped[str | None] = mapped_column(String(40))
    # calibration: a run on labelled records whose configuration (models, parameters, prompt hash) is locked
    is_calibration: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    locked_config: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    calibration_task_id: Mapped[int | None] = mapped_column(ForeignKey("screening_tasks.id", ondelete="SET NULL"))
    config_differences: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    # test–retest of a fixed subset re-screened without the cache at the end of a long run
    drift_report: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class ScreeningBatch(Base):
    __tablename__ = "screening_batches"
    __table_args__ = (
        UniqueConstraint("task_id", "batch_index"),
        Index("ix_screening_batches_status_lease", "status", "lease_expires_at"),
        CheckConstraint(check_constraint_sql("status", BatchStatus), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("screening_tasks.id", ondelete="CASCADE"), index=True)
    batch_index: Mapped[int] = mapped_column(Integer)
    item_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=BatchStatus.PENDING)
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    celery_task_id: Mapped[str | None] = mapped_column(String(155), index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_checkpoint_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # when the current message was sent (for a Celery retry: when it is due); the sweeper's "lost message" clock
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # when a delivery last won the lease (the sweeper compares claim order with dispatch order)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    # the part of the task's budget reservation held by this batch's lease holder (released on a new claim)
    budget_reserved_usd: Mapped[Decimal] = mapped_column(Numeric(14, 6), default=0, server_default="0")


class ScreeningResult(Base):
    __tablename__ = "screening_results"
    __table_args__ = (
        UniqueConstraint("task_id", "item_id"),
        CheckConstraint(check_constraint_sql("status", ResultStatus), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("screening_tasks.id", ondelete="CASCADE"), index=True)
    # the item's id within its kind (a literature id for literature kinds); unique per task
    item_id: Mapped[int] = mapped_column(BigInteger)
    literature_id: Mapped[int | None] = mapped_column(ForeignKey("literature.id", ondelete="CASCADE"), index=True)
    batch_index: Mapped[int] = mapped_column(Integer)
    # one entry per model: {model, provider, decision, reason, confidence, picos, raw_response,
    #                        prompt_tokens, completion_tokens, cost, cached, error}
    decisions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # the machine's combined decision; never changed by a human review (final_decision is)
    llm_decision: Mapped[str | None] = mapped_column(String(20))
    final_decision: Mapped[str | None] = mapped_column(String(20), index=True)
    has_conflict: Mapped[bool] = mapped_column(Boolean, default=False)
    manual_review_required: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default=ResultStatus.SUCCESS)
    error: Mapped[str | None] = mapped_column(Text)
    exclusion_reason: Mapped[str | None] = mapped_column(Text)
    # per-field extraction output: {name: {value, evidence, page, agreed, by_model: {model: value}, verified}}
    fields: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_estimate: Mapped[Decimal] = mapped_column(Numeric(14, 6), default=0)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    review_decision: Mapped[str | None] = mapped_column(String(20))
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # set when the record was drawn into the random audit sample of machine exclusions
    audit_sampled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
