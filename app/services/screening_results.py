"""Reading a run (any task kind) for its owner: task status with progress and ETA, batches, results, review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.models import Literature, Project, ScreeningBatch, ScreeningResult, ScreeningTask, User
from app.models.statuses import FINAL_TASK_STATUSES, TERMINAL_BATCH_STATUSES, ResultStatus, TaskStatus

REVIEW_DECISIONS = ("include", "exclude")
DECISION_FILTERS = ("include", "exclude", "conflict", "uncertain", "failed")
REVIEW_FILTERS = ("required", "reviewed", "unreviewed", "include", "exclude")


class TaskNotFound(LookupError):
    """No such task for this user (another user's task is 'not found' too)."""


class ResultNotFound(LookupError):
    """No such result for this user."""


def get_task(session: Session, user: User, task_id: int) -> ScreeningTask:
    """The user's task ``task_id``, or TaskNotFound."""
    task = session.scalar(select(ScreeningTask).where(ScreeningTask.id == task_id,
                                                      ScreeningTask.owner_id == user.id))
    if task is None:
        raise TaskNotFound(task_id)
    return task


def list_tasks(session: Session, project: Project, offset: int, limit: int) -> tuple[list[ScreeningTask], int]:
    """A page of the project's tasks, newest first, and the total count."""
    query = select(ScreeningTask).where(ScreeningTask.project_id == project.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(ScreeningTask.id.desc()).offset(offset).limit(limit)))
    return items, total


def throughput(session: Session, task: ScreeningTask, window_seconds: float = 600.0) -> float | None:
    """Items per second over the last ``window_seconds`` of this run (None before any item finished)."""
    if task.started_at is None:
        return None
    now = datetime.now(UTC)
    since = max(task.started_at, now - timedelta(seconds=window_seconds))
    elapsed = (now - since).total_seconds()
    if elapsed <= 0:
        return None
    recent = session.scalar(select(func.count()).select_from(ScreeningResult).where(
        ScreeningResult.task_id == task.id, ScreeningResult.created_at >= since)) or 0
    return recent / elapsed if recent else None


def task_view(session: Session, task: ScreeningTask) -> dict[str, Any]:
    """The task as the API shows it: counters, progress (0–1), processed batches and an ETA."""
    session.refresh(task)
    processed_batches = session.scalar(
        select(func.count()).select_from(ScreeningBatch)
        .where(ScreeningBatch.task_id == task.id, ScreeningBatch.status.in_(TERMINAL_BATCH_STATUSES))
    ) or 0
    progress = min(1.0, task.processed_items / task.total_items) if task.total_items else 0.0
    eta: float | None = None
    if task.status in FINAL_TASK_STATUSES:
        progress = 1.0 if task.status in (TaskStatus.COMPLETED, TaskStatus.COMPLETED_WITH_ERRORS) else progress
        eta = 0.0
    elif task.status == TaskStatus.RUNNING:
        rate = throughput(session, task)
        remaining = max(0, task.total_items - task.processed_items)
        if rate:
            eta = round(remaining / rate, 1)
    view = {column.name: getattr(task, column.name) for column in ScreeningTask.__table__.columns
            if column.name not in ("model_config", "params")}
    view.update(progress=round(progress, 4), processed_batches=processed_batches, eta_seconds=eta,
                models=[m.get("provider", "") + ":" + m.get("model", "") for m in
                        (task.model_config or {}).get("models", [])],
                prompt_version=(task.model_config or {}).get("prompt_version"))
    return view


def list_batches(session: Session, task: ScreeningTask, offset: int, limit: int) -> tuple[list[ScreeningBatch], int]:
    """A page of the task's batches in index order."""
    query = select(ScreeningBatch).where(ScreeningBatch.task_id == task.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(ScreeningBatch.batch_index).offset(offset).limit(limit)))
    return items, total


@dataclass
class ResultFilters:
    """Filters of the results list: final decision, conflict flag, human-review state."""

    decision: str | None = None
    conflict: bool | None = None
    review: str | None = None


def _results_query(task: ScreeningTask, filters: ResultFilters) -> Select:
    query = (select(ScreeningResult, Literature)
             .outerjoin(Literature, Literature.id == ScreeningResult.literature_id)
             .where(ScreeningResult.task_id == task.id))
    if filters.decision == "failed":
        query = query.where(ScreeningResult.status == ResultStatus.FAILED)
    elif filters.decision:
        query = query.where(ScreeningResult.final_decision == filters.decision)
    if filters.conflict is not None:
        query = query.where(ScreeningResult.has_conflict.is_(filters.conflict))
    if filters.review == "required":
        query = query.where(ScreeningResult.manual_review_required.is_(True),
                            ScreeningResult.review_decision.is_(None))
    elif filters.review == "reviewed":
        query = query.where(ScreeningResult.review_decision.is_not(None))
    elif filters.review == "unreviewed":
        query = query.where(ScreeningResult.review_decision.is_(None))
    elif filters.review in REVIEW_DECISIONS:
        query = query.where(ScreeningResult.review_decision == filters.review)
    return query


def list_results(session: Session, task: ScreeningTask, filters: ResultFilters, offset: int,
                 limit: int) -> tuple[list[dict[str, Any]], int]:
    """A page of results (with their records' titles), in item order, and the total count."""
    query = _results_query(task, filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(ScreeningResult.item_id).offset(offset).limit(limit)).all()
    return [result_view(result, record) for result, record in rows], total


def result_view(result: ScreeningResult, record: Literature | None) -> dict[str, Any]:
    """A result as the API shows it (each model's decision without raw responses)."""
    review = None
    if result.review_decision is not None:
        review = {"decision": result.review_decision, "note": result.review_note,
                  "reviewer_id": result.reviewer_id, "reviewed_at": result.reviewed_at}
    return {
        "id": result.id, "task_id": result.task_id, "item_id": result.item_id, "literature_id": result.literature_id,
        "title": record.title if record is not None else None,
        "decisions": [{"model": d.get("model"), "decision": d.get("decision"), "reason": d.get("reason"),
                       "confidence": d.get("confidence")} for d in result.decisions or []],
        "llm_decision": result.llm_decision, "final_decision": result.final_decision,
        "has_conflict": result.has_conflict, "manual_review_required": result.manual_review_required,
        "status": result.status, "error": result.error, "exclusion_reason": result.exclusion_reason,
        "fields": result.fields, "review": review,
        "warnings": sorted({d["warning"] for d in result.decisions or [] if d.get("warning")}),
    }


def get_result(session: Session, user: User, result_id: int) -> tuple[ScreeningResult, Literature | None]:
    """The user's result ``result_id`` with its record (None for non-literature kinds), or ResultNotFound."""
    row = session.execute(
        select(ScreeningResult, Literature)
        .outerjoin(Literature, Literature.id == ScreeningResult.literature_id)
        .join(ScreeningTask, ScreeningTask.id == ScreeningResult.task_id)
        .where(ScreeningResult.id == result_id, ScreeningTask.owner_id == user.id)
    ).first()
    if row is None:
        raise ResultNotFound(result_id)
    return row[0], row[1]


def review_result(session: Session, user: User, result: ScreeningResult, decision: str,
                  note: str | None) -> ScreeningResult:
    """Record a human decision: it becomes the final decision (``llm_decision`` keeps the machine's)."""
    if decision not in REVIEW_DECISIONS:
        raise ValueError(f"review_decision must be one of {', '.join(REVIEW_DECISIONS)}")
    result.review_decision = decision
    result.review_note = note
    result.reviewer_id = user.id
    result.reviewed_at = datetime.now(UTC)
    result.final_decision = decision
    result.manual_review_required = False
    session.commit()
    return result


def list_user_tasks(session: Session, user: User, task_type: str, limit: int) -> list[ScreeningTask]:
    """The user's newest tasks of kind ``task_type`` (e.g. clinical-record extractions, which have no project)."""
    return list(session.scalars(select(ScreeningTask)
                                .where(ScreeningTask.owner_id == user.id, ScreeningTask.task_type == task_type)
                                .order_by(ScreeningTask.id.desc()).limit(limit)))
