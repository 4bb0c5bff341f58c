"""Workspace pages for runs: start one after its cost estimate, watch its progress, cancel or retry it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from app.api.screening.schemas import StartScreeningSchema
from app.extensions import db
from app.models import ScreeningTask
from app.models.statuses import FINAL_TASK_STATUSES, BatchStatus
from app.services import engine, estimate
from app.services import screening_results as results_service
from app.services.kinds import KindInputError, NothingToProcess, TaskScope
from app.services.record_screening import NoModelsConfigured
from app.services.review_queue import queue_counts
from app.web.auth import reviewer
from app.web.blueprint import bp
from app.web.projects import load_project

BATCHES_SHOWN = 500
RUN_KINDS = {"title_abstract": "Title and abstract screening", "fulltext": "Full-text screening and extraction"}


def load_task(task_id: int) -> ScreeningTask:
    """The reviewer's task (TaskNotFound, shown as a 404, also for another user's task)."""
    return results_service.get_task(db.session(), reviewer(), task_id)


def _estimate(project: Any) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return estimate.estimate_screening(db.session(), project, current_app.config), None
    except NoModelsConfigured as exc:
        return None, f"No screening models are configured ({exc}); set SCREENING_MODELS."


@bp.route("/projects/<int:project_id>/runs/new")
def new_run(project_id: int) -> str:
    """The start form with the cost estimate of screening every record."""
    project = load_project(project_id)
    cost, problem = _estimate(project)
    return render_template("web/run_new.html", project=project, estimate=cost, problem=problem, kinds=RUN_KINDS,
                           form={})


def _parse_budget(raw: str) -> float | None:
    if not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError({"budget_usd": ["Enter an amount in USD, e.g. 5 or 2.50."]}) from None
    if value <= 0:
        raise ValidationError({"budget_usd": ["The budget must be more than 0."]})
    return value


@bp.route("/projects/<int:project_id>/runs", methods=["POST"])
def start_run(project_id: int) -> Any:
    """Start a run (validated by the API's schema) and go to its progress page."""
    project = load_project(project_id)
    form = request.form
    session = db.session()
    try:
        data = StartScreeningSchema().load({
            "task_type": form.get("task_type", "title_abstract"),
            "batch_size": int(form["batch_size"]) if form.get("batch_size", "").strip() else None,
        })
        budget = _parse_budget(form.get("budget_usd", ""))
        scope = TaskScope(owner_id=project.owner_id, project_id=project.id, params={})
        task = engine.start_task(engine.engine_context(current_app), session, data["task_type"], scope,
                                 data.get("batch_size"), budget_usd=budget)
    except (ValueError, ValidationError, NoModelsConfigured, engine.ScreeningError, NothingToProcess,
            KindInputError) as exc:
        session.rollback()
        message = _problem(exc)
        cost, problem = _estimate(project)
        return render_template("web/run_new.html", project=project, estimate=cost, problem=problem, kinds=RUN_KINDS,
                               form=form, error=message), (
            422 if isinstance(exc, ValueError | ValidationError | KindInputError) else 409)
    return redirect(url_for("web.task", task_id=task.id))


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        messages = exc.messages if isinstance(exc.messages, dict) else {"form": exc.messages}
        return "; ".join(f"{name.replace('_', ' ')}: {' '.join(map(str, problems))}"
                         for name, problems in messages.items())
    if isinstance(exc, ValueError) and not isinstance(exc, KindInputError):
        return "Batch size must be a whole number."
    return str(exc)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def progress_document(task: ScreeningTask) -> dict[str, Any]:
    """What the progress page shows and polls: counters, rate, ETA, retries and failures (from the rows)."""
    session = db.session()
    view = results_service.task_view(session, task)
    batches, _total = results_service.list_batches(session, task, 0, BATCHES_SHOWN)
    rate = results_service.throughput(session, task) if view["status"] not in FINAL_TASK_STATUSES else None
    by_status: dict[str, int] = {}
    for batch in batches:
        by_status[batch.status] = by_status.get(batch.status, 0) + 1
    return {
        "id": task.id, "status": view["status"], "final": view["status"] in FINAL_TASK_STATUSES,
        "task_type": view["task_type"], "total_items": view["total_items"],
        "processed_items": view["processed_items"], "success_items": view["success_items"],
        "failed_items": view["failed_items"], "conflict_items": view["conflict_items"],
        "total_batches": view["total_batches"], "processed_batches": view["processed_batches"],
        "progress": view["progress"], "eta_seconds": view["eta_seconds"],
        "rate_per_minute": round(rate * 60, 1) if rate else None,
        "retries": sum(max(0, batch.attempts - 1) for batch in batches),
        "failed_batches": by_status.get(BatchStatus.FAILED, 0),
        "running_batches": by_status.get(BatchStatus.RUNNING, 0),
        "cost_estimate": float(view["cost_estimate"] or 0), "error": view["error"],
        "budget_usd": float(view["budget_usd"]) if view.get("budget_usd") is not None else None,
        "paused_reason": view.get("paused_reason"),
        "started_at": _iso(view["started_at"]), "completed_at": _iso(view["completed_at"]),
        "batches": [{"batch_index": batch.batch_index, "status": batch.status, "cursor": batch.cursor,
                     "size": batch.size, "attempts": batch.attempts, "error": batch.error}
                    for batch in batches],
    }


@bp.route("/tasks/<int:task_id>")
def task(task_id: int) -> str:
    """A run's live progress page (ui.js polls progress.json while it runs)."""
    run = load_task(task_id)
    project = load_project(run.project_id) if run.project_id is not None else None
    return render_template("web/task.html", task=run, project=project, progress=progress_document(run),
                           queue_counts=queue_counts(db.session(), run))


@bp.route("/tasks/<int:task_id>/progress.json")
def task_progress(task_id: int) -> Response:
    """The progress document as JSON, for the page's poller."""
    response = jsonify(progress_document(load_task(task_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/tasks/<int:task_id>/cancel", methods=["POST"])
def cancel_task(task_id: int) -> Response:
    """Cancel the run: running batches stop at their next checkpoint."""
    run = load_task(task_id)
    try:
        engine.cancel_task(engine.engine_context(current_app), db.session(), run)
    except engine.ScreeningError as exc:
        db.session().rollback()
        return _back_to_task(run, str(exc))
    return _back_to_task(run, "Cancel requested: batches stop at their next checkpoint.")


@bp.route("/tasks/<int:task_id>/retry", methods=["POST"])
def retry_task(task_id: int) -> Response:
    """Re-queue the failed items and unfinished batches of a finished run."""
    run = load_task(task_id)
    try:
        engine.retry_task(engine.engine_context(current_app), db.session(), run)
    except engine.ScreeningError as exc:
        db.session().rollback()
        return _back_to_task(run, str(exc))
    return _back_to_task(run, "Retry queued: failed items run again as a new attempt.")


@bp.route("/tasks/<int:task_id>/resume", methods=["POST"])
def resume_task(task_id: int) -> Response:
    """Resume a paused run with a new budget: its batches continue from their checkpoints."""
    run = load_task(task_id)
    try:
        budget = _parse_budget(request.form.get("budget_usd", ""))
        if budget is None:
            raise ValidationError({"budget_usd": ["Enter the new budget in USD."]})
        engine.resume_task(engine.engine_context(current_app), db.session(), run, budget)
    except (ValidationError, engine.BudgetTooLow, engine.ScreeningError) as exc:
        db.session().rollback()
        return _back_to_task(run, _problem(exc) if isinstance(exc, ValidationError) else str(exc))
    return _back_to_task(run, "Resumed: the batches continue from their checkpoints.")


def _back_to_task(run: ScreeningTask, message: str) -> Response:
    flash(message)
    return redirect(url_for("web.task", task_id=run.id))
