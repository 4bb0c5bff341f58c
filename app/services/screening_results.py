"""Reading a screening run for its owner: task status with progress and ETA, batches, results, human review."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.models import Literature, Project, ScreeningBatch, ScreeningResult, ScreeningTask, User
from app.models.screening import FINAL_TASK_STATUSES, TERMINAL_BATCH_STATUSES
from app.services.screening import throughput

REVIEW_DECISIONS = ("include", "exclude")
DECISION_FILTERS = ("include", "exclude", "conflict", "uncertain", "failed")
REVIEW_FILTERS = ("required", "reviewed", "unreviewed", "include", "exclude")


class TaskNotFound(LookupError):
    """No such task for this user (another user's task is 'not found' too)."""


class ResultNotFound(LookupError):
    """No such result for this user."""


def get_task(session: Session, user: User, task_id: int) -> ScreeningTask:
    """The user's task ``task_id``, or TaskNotFound."""
    task = session.scalar(
        select(ScreeningTask).join(Project, Project.id == ScreeningTask.project_id)
        .where(ScreeningTask.id == task_id, Project.owner_id == user.id)
    )
    if task is None:
        raise TaskNotFound(task_id)
    return task


def list_tasks(session: Session, project: Project, offset: int, limit: int) -> tuple[list[ScreeningTask], int]:
    """A page of the project's tasks, newest first, and the total count."""
    query = select(ScreeningTask).where(ScreeningTask.project_id == project.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(ScreeningTask.id.desc()).offset(offset).limit(limit)))
    return items, total


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
        progress = 1.0 if task.status in ("completed", "completed_with_errors") else progress
        eta = 0.0
    elif task.status == "running":
        rate = throughput(session, task)
        remaining = max(0, task.total_items - task.processed_items)
        if rate:
            eta = round(remaining / rate, 1)
    view = {column.name: getattr(task, column.name) for column in ScreeningTask.__table__.columns
            if column.name not in ("model_config",)}
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
             .join(Literature, Literature.id == ScreeningResult.literature_id)
             .where(ScreeningResult.task_id == task.id))
    if filters.decision == "failed":
        query = query.where(ScreeningResult.status == "failed")
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
    """A page of results (with their records' titles), in record order, and the total count."""
    query = _results_query(task, filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(ScreeningResult.literature_id).offset(offset).limit(limit)).all()
    return [result_view(result, record) for result, record in rows], total


def iter_results(session: Session, task: ScreeningTask) -> Iterator[tuple[ScreeningResult, Literature]]:
    """Every result of the task with its record, in record order (for exports)."""
    query = _results_query(task, ResultFilters()).order_by(ScreeningResult.literature_id)
    # unpacked: the signature promises plain (result, record) tuples, not SQLAlchemy Row objects
    for result, record in session.execute(query.execution_options(yield_per=500)):  # noqa: UP028
        yield result, record


def result_view(result: ScreeningResult, record: Literature) -> dict[str, Any]:
    """A result as the API shows it (each model's decision without raw responses)."""
    review = None
    if result.review_decision is not None:
        review = {"decision": result.review_decision, "note": result.review_note,
                  "reviewer_id": result.reviewer_id, "reviewed_at": result.reviewed_at}
    return {
        "id": result.id, "task_id": result.task_id, "literature_id": result.literature_id, "title": record.title,
        "decisions": [{"model": d.get("model"), "decision": d.get("decision"), "reason": d.get("reason"),
                       "confidence": d.get("confidence")} for d in result.decisions or []],
        "final_decision": result.final_decision, "has_conflict": result.has_conflict,
        "manual_review_required": result.manual_review_required, "status": result.status, "error": result.error,
        "review": review,
    }


def get_result(session: Session, user: User, result_id: int) -> tuple[ScreeningResult, Literature]:
    """The user's result ``result_id`` with its record, or ResultNotFound."""
    row = session.execute(
        select(ScreeningResult, Literature)
        .join(Literature, Literature.id == ScreeningResult.literature_id)
        .join(ScreeningTask, ScreeningTask.id == ScreeningResult.task_id)
        .join(Project, Project.id == ScreeningTask.project_id)
        .where(ScreeningResult.id == result_id, Project.owner_id == user.id)
    ).first()
    if row is None:
        raise ResultNotFound(result_id)
    return row[0], row[1]


def review_result(session: Session, user: User, result: ScreeningResult, decision: str,
                  note: str | None) -> ScreeningResult:
    """Record a human decision: it becomes the final decision and the record no longer awaits review."""
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


def machine_decision(result: ScreeningResult) -> str | None:
    """The models' combined decision, whatever a human decided later."""
    if result.status == "failed":
        return None
    if result.review_decision is None:
        return result.final_decision
    return "conflict" if result.has_conflict else next(
        (d.get("decision") for d in result.decisions or [] if d.get("decision")), None)
