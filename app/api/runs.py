"""What every task kind's run endpoints do (asl and dc alike): the task document, its batches and results
pages, cancel and retry — one implementation, called by each kind's blueprint after its own ownership check."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app

from app.api.errors import api_abort
from app.extensions import db
from app.models import ScreeningBatch, ScreeningTask
from app.services import engine
from app.services import screening_results as results_service

logger = logging.getLogger(__name__)


def task_document(task: ScreeningTask) -> dict[str, Any]:
    """The task as the API shows it (counters, progress, ETA)."""
    return results_service.task_view(db.session(), task)


def batches_page(task: ScreeningTask, pagination_parameters: Any) -> list[ScreeningBatch]:
    """One page of the task's batches (sets the pagination total)."""
    items, total = results_service.list_batches(db.session(), task, pagination_parameters.first_item,
                                                pagination_parameters.page_size)
    pagination_parameters.item_count = total
    return items


def results_page(task: ScreeningTask, filters: dict[str, Any], pagination_parameters: Any) -> list[dict[str, Any]]:
    """One page of the task's results under ``filters`` (sets the pagination total)."""
    items, total = results_service.list_results(db.session(), task, results_service.ResultFilters(**filters),
                                                pagination_parameters.first_item, pagination_parameters.page_size)
    pagination_parameters.item_count = total
    return items


def cancel(task: ScreeningTask) -> dict[str, Any]:
    """Cancel the run (409 when it is already finished)."""
    session = db.session()
    try:
        cancelled = engine.cancel_task(engine.engine_context(current_app), session, task)
    except engine.ScreeningError as exc:
        api_abort(409, str(exc))
    return results_service.task_view(session, cancelled)


def resume(task: ScreeningTask, budget_usd: float) -> dict[str, Any]:
    """Raise a paused run's budget and re-send its unfinished batches (409 / 422: app/api/errors.py)."""
    session = db.session()
    resumed = engine.resume_task(engine.engine_context(current_app), session, task, budget_usd)
    return results_service.task_view(session, resumed)


def retry(task: ScreeningTask) -> dict[str, Any]:
    """Re-queue the failed items and unfinished batches of a finished run (409 otherwise)."""
    session = db.session()
    try:
        retried = engine.retry_task(engine.engine_context(current_app), session, task)
    except engine.ScreeningError as exc:
        api_abort(409, str(exc))
    return results_service.task_view(session, retried)
