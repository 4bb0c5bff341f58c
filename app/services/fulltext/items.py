"""Which records reach the full-text stage: those the newest title/abstract task passed (include or conflict)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ScreeningResult, ScreeningTask

PASSING_DECISIONS = ("include", "conflict")


def latest_task(session: Session, project_id: int | None, task_type: str) -> ScreeningTask | None:
    """The project's newest task of ``task_type`` (any status), if any."""
    return session.scalar(select(ScreeningTask).where(ScreeningTask.project_id == project_id,
                                                      ScreeningTask.task_type == task_type)
                          .order_by(ScreeningTask.id.desc()).limit(1))


def title_abstract_passed(session: Session, project_id: int | None) -> set[int] | None:
    """Records whose title/abstract final decision (a human's review included) is include or conflict, from the
    newest title/abstract task; None when the project has none."""
    task = latest_task(session, project_id, "title_abstract")
    if task is None:
        return None
    return set(session.scalars(select(ScreeningResult.literature_id).where(
        ScreeningResult.task_id == task.id, ScreeningResult.final_decision.in_(PASSING_DECISIONS))))
