"""Screening runs under /api/v1/asl: start a run, watch it, cancel / retry it, read, review and export results."""

from __future__ import annotations

import logging

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from app.api import runs
from app.api.auth import current_user
from app.api.pagination import PAGINATE_ARGS
from app.api.projects.routes import load_project
from app.api.screening.schemas import (
    BatchSchema,
    ExportArgsSchema,
    ResultFilterSchema,
    ResultSchema,
    ResumeSchema,
    ReviewInputSchema,
    StartScreeningSchema,
    TaskSchema,
)
from app.extensions import db
from app.models import ScreeningTask
from app.services import engine
from app.services import export as export_service
from app.services import screening_results as results_service
from app.services.fulltext.review import review_result_fields
from app.services.kinds import TaskScope

logger = logging.getLogger(__name__)

blp = Blueprint("screening", __name__, url_prefix="/api/v1/asl", description="Screening runs and results")


def load_task(task_id: int) -> ScreeningTask:
    """The current user's task (TaskNotFound, a 404, also for another user's task)."""
    return results_service.get_task(db.session(), current_user(), task_id)


@blp.route("/projects/<int:project_id>/screening")
class StartScreening(MethodView):
    @blp.arguments(StartScreeningSchema)
    @blp.response(202, TaskSchema)
    def post(self, data, project_id: int):
        """Start screening the project's records (202: the run proceeds in the background)."""
        project = load_project(project_id)
        session = db.session()
        params = {"literature_ids": data["literature_ids"]} if data.get("literature_ids") is not None else {}
        scope = TaskScope(owner_id=project.owner_id, project_id=project.id, params=params)
        task = engine.start_task(engine.engine_context(current_app), session, data["task_type"], scope,
                                 data.get("batch_size"), budget_usd=data.get("budget_usd"))
        return results_service.task_view(session, task)


@blp.route("/projects/<int:project_id>/tasks")
class ProjectTasks(MethodView):
    @blp.response(200, TaskSchema(many=True))
    @blp.paginate(**PAGINATE_ARGS)
    def get(self, project_id: int, pagination_parameters):
        """List the project's screening tasks, newest first."""
        project = load_project(project_id)
        session = db.session()
        items, total = results_service.list_tasks(session, project, pagination_parameters.first_item,
                                                  pagination_parameters.page_size)
        pagination_parameters.item_count = total
        return [results_service.task_view(session, task) for task in items]


@blp.route("/tasks/<int:task_id>")
class TaskById(MethodView):
    @blp.response(200, TaskSchema)
    def get(self, task_id: int):
        """A task's status, counters, progress and ETA."""
        return runs.task_document(load_task(task_id))


@blp.route("/tasks/<int:task_id>/batches")
class TaskBatches(MethodView):
    @blp.response(200, BatchSchema(many=True))
    @blp.paginate(**PAGINATE_ARGS)
    def get(self, task_id: int, pagination_parameters):
        """A task's batches: status, cursor, attempts and lease (the checkpoint rows)."""
        return runs.batches_page(load_task(task_id), pagination_parameters)


@blp.route("/tasks/<int:task_id>/cancel")
class CancelTask(MethodView):
    @blp.response(202, TaskSchema)
    def post(self, task_id: int):
        """Cancel a run: running batches stop at their next checkpoint; results so far are kept."""
        return runs.cancel(load_task(task_id))


@blp.route("/tasks/<int:task_id>/retry")
class RetryTask(MethodView):
    @blp.response(202, TaskSchema)
    def post(self, task_id: int):
        """Re-run the failed items and failed or cancelled batches of a finished task (same task, new attempt)."""
        return runs.retry(load_task(task_id))


@blp.route("/tasks/<int:task_id>/resume")
class ResumeTask(MethodView):
    @blp.arguments(ResumeSchema)
    @blp.response(202, TaskSchema)
    @blp.alt_response(409, description="The task is not paused")
    def post(self, data, task_id: int):
        """Raise a paused run's budget and continue it from its checkpoints (422: not above what is spent)."""
        return runs.resume(load_task(task_id), data["budget_usd"])


@blp.route("/tasks/<int:task_id>/results")
class TaskResults(MethodView):
    @blp.arguments(ResultFilterSchema, location="query")
    @blp.response(200, ResultSchema(many=True))
    @blp.paginate(**PAGINATE_ARGS)
    def get(self, filters, task_id: int, pagination_parameters):
        """A task's results; filter by decision (include, exclude, conflict, uncertain, failed), conflict, review."""
        return runs.results_page(load_task(task_id), filters, pagination_parameters)


@blp.route("/tasks/<int:task_id>/export")
class ExportTask(MethodView):
    @blp.arguments(ExportArgsSchema, location="query")
    @blp.response(200, content_type="text/plain")
    def get(self, args, task_id: int):
        """Download the results as CSV, XLSX or RIS (RIS re-imports into reference managers and Covidence)."""
        task = load_task(task_id)
        session = db.session()
        body: str | bytes
        if args["format"] == "ris":
            body, mimetype = export_service.export_ris(session, task), "application/x-research-info-systems"
        elif args["format"] == "xlsx":
            body = export_service.export_xlsx(session, task)
            mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        else:
            body, mimetype = export_service.export_csv(session, task), "text/csv"
        filename = f"litscreen-task-{task.id}.{args['format']}"
        return Response(body, mimetype=mimetype,
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@blp.route("/results/<int:result_id>")
class ResultById(MethodView):
    @blp.arguments(ReviewInputSchema)
    @blp.response(200, ResultSchema)
    def patch(self, data, result_id: int):
        """Record a human review: a decision (include or exclude, with a note) and / or reviewed field values."""
        session = db.session()
        result, record = results_service.get_result(session, current_user(), result_id)
        review_result_fields(session, current_user(), result, data)  # FieldReviewRejected: 422 (app/api/errors.py)
        return results_service.result_view(result, record)
