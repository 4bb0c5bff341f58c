"""Clinical-record extractions: start one on a dataset, then /api/v1/dc/tasks/{id} (status, batches, results,
export, accuracy, cancel, retry) and PATCH /api/v1/dc/results/{id} (per-field review). The task, batch and result
shapes are the screening ones (``app/api/screening/schemas.py``)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from app.api import runs
from app.api.auth import current_user
from app.api.dc.datasets import load_dataset, reject
from app.api.dc.schemas import DcExportArgsSchema, DcResultFilterSchema, ResultReviewSchema, StartExtractionSchema
from app.api.errors import api_abort
from app.api.pagination import PAGINATE_ARGS
from app.api.screening.schemas import BatchSchema, ResultSchema, ResumeSchema, TaskSchema
from app.extensions import db
from app.models import DcRecord, ScreeningTask
from app.services import engine
from app.services import screening_results as results_service
from app.services.dc import export as dc_export
from app.services.dc.accuracy import accuracy_report
from app.services.dc.errors import DatasetRejected
from app.services.dc.review import review_result
from app.services.kinds import KindInputError, NothingToProcess, TaskScope
from app.services.kinds.dc_extraction import TASK_TYPE, field_specs
from app.services.record_screening import NoModelsConfigured

logger = logging.getLogger(__name__)

blp = Blueprint("dc_tasks", __name__, url_prefix="/api/v1/dc",
                description="Clinical-record extraction runs, results, review, accuracy and export")


def load_dc_task(task_id: int) -> ScreeningTask:
    """The current user's extraction task, or a 404 (also for another user's, or a screening task)."""
    try:
        task = results_service.get_task(db.session(), current_user(), task_id)
    except results_service.TaskNotFound:
        task = None
    if task is None or task.task_type != TASK_TYPE:
        api_abort(404, f"Task {task_id} not found.")
    return task  # type: ignore[return-value]


@blp.route("/datasets/<int:dataset_id>/extractions")
class StartExtraction(MethodView):
    @blp.arguments(StartExtractionSchema)
    @blp.response(202, TaskSchema)
    def post(self, data: dict[str, Any], dataset_id: int):
        """Start extracting the schema's fields from every row of the dataset (202: runs in the background)."""
        dataset = load_dataset(dataset_id)
        session = db.session()
        params = {"dataset_id": dataset.id, "id_column": data["id_column"], "text_columns": data["text_columns"],
                  "schema": data["schema"], "gold_columns": data.get("gold_columns") or {},
                  "columns": list(dataset.columns)}
        if data.get("budget_usd") is not None:
            params["budget_usd"] = data["budget_usd"]
        scope = TaskScope(owner_id=current_user().id, project_id=None, params=params)
        try:
            task = engine.start_task(engine.engine_context(current_app), session, TASK_TYPE, scope,
                                     data.get("batch_size"), budget_usd=data.get("budget_usd"))
        except NoModelsConfigured as exc:
            api_abort(409, f"No extraction models configured: {exc}")
        except KindInputError as exc:
            session.rollback()
            api_abort(422, str(exc), {"json": {exc.field: [str(exc)]}})
        except (engine.ScreeningError, NothingToProcess) as exc:
            session.rollback()
            api_abort(409, str(exc))
        return results_service.task_view(session, task)


@blp.route("/tasks/<int:task_id>")
class DcTaskById(MethodView):
    @blp.response(200, TaskSchema)
    def get(self, task_id: int):
        """An extraction's status, counters, progress and ETA."""
        return runs.task_document(load_dc_task(task_id))


@blp.route("/tasks/<int:task_id>/batches")
class DcTaskBatches(MethodView):
    @blp.response(200, BatchSchema(many=True))
    @blp.paginate(**PAGINATE_ARGS)
    def get(self, task_id: int, pagination_parameters):
        """An extraction's batches (the checkpoint rows)."""
        return runs.batches_page(load_dc_task(task_id), pagination_parameters)


@blp.route("/tasks/<int:task_id>/cancel")
class DcCancelTask(MethodView):
    @blp.response(202, TaskSchema)
    def post(self, task_id: int):
        """Cancel an extraction: running batches stop at their next checkpoint; results so far are kept."""
        return runs.cancel(load_dc_task(task_id))


@blp.route("/tasks/<int:task_id>/retry")
class DcRetryTask(MethodView):
    @blp.response(202, TaskSchema)
    def post(self, task_id: int):
        """Re-run the failed records and failed or cancelled batches of a finished extraction."""
        return runs.retry(load_dc_task(task_id))


@blp.route("/tasks/<int:task_id>/resume")
class DcResumeTask(MethodView):
    @blp.arguments(ResumeSchema)
    @blp.response(202, TaskSchema)
    @blp.alt_response(409, description="The extraction is not paused")
    def post(self, data: dict[str, Any], task_id: int):
        """Raise a paused extraction's budget and continue it from its checkpoints (422: not above what is spent)."""
        return runs.resume(load_dc_task(task_id), data["budget_usd"])


@blp.route("/tasks/<int:task_id>/results")
class DcTaskResults(MethodView):
    @blp.arguments(DcResultFilterSchema, location="query")
    @blp.response(200, ResultSchema(many=True))
    @blp.paginate(**PAGINATE_ARGS)
    def get(self, filters, task_id: int, pagination_parameters):
        """An extraction's results with their ``fields``; filter by decision (agreed, conflict, review, reviewed,
        failed), conflict or review."""
        return runs.results_page(load_dc_task(task_id), filters, pagination_parameters)


@blp.route("/tasks/<int:task_id>/export")
class DcExportTask(MethodView):
    @blp.arguments(DcExportArgsSchema, location="query")
    @blp.response(200, content_type="text/csv")
    def get(self, args, task_id: int):
        """Download the dataset with the extracted fields, per-model values, evidence and flags (CSV or XLSX)."""
        task = load_dc_task(task_id)
        session = db.session()
        if args["format"] == "xlsx":
            body: Any = dc_export.export_xlsx(session, task)
            mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        else:
            body, mimetype = dc_export.export_csv(session, task), "text/csv"
        filename = f"litscreen-extraction-{task.id}.{args['format']}"
        return Response(body, mimetype=mimetype,
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@blp.route("/tasks/<int:task_id>/accuracy")
class DcAccuracy(MethodView):
    @blp.response(200)
    def get(self, task_id: int):
        """Per field, against the gold columns: exact match, coverage, list precision/recall, per model and agreed."""
        task = load_dc_task(task_id)
        params = task.params or {}
        gold = params.get("gold_columns") or {}
        if not gold:
            api_abort(409, "This extraction was started without gold_columns; there is nothing to compare with.")
        session = db.session()
        kind_items = dc_export.result_pairs(session, task)
        models = [f"{m.get('provider')}:{m.get('model')}" for m in (task.model_config or {}).get("models", [])]
        return {"task_id": task.id, **accuracy_report(field_specs(params), gold, models, kind_items)}


@blp.route("/results/<int:result_id>")
class DcResultById(MethodView):
    @blp.arguments(ResultReviewSchema)
    @blp.response(200, ResultSchema)
    def patch(self, data: dict[str, Any], result_id: int):
        """Settle fields by hand: ``{fields: {name: {value, note?}}, note?}`` (values validated by the field's type)."""
        session = db.session()
        try:
            result, _record = results_service.get_result(session, current_user(), result_id)
        except results_service.ResultNotFound:
            result = None
        task = session.get(ScreeningTask, result.task_id) if result is not None else None
        if result is None or task is None or task.task_type != TASK_TYPE:
            api_abort(404, f"Result {result_id} not found.")
            raise AssertionError("unreachable")
        try:
            review_result(result, field_specs(task.params or {}), data["fields"], data.get("note"), current_user().id)
        except DatasetRejected as exc:
            reject(exc)
        session.commit()
        record = session.scalar(select(DcRecord).where(DcRecord.id == result.item_id))
        view = results_service.result_view(result, None)
        view["row"] = record.row_index if record is not None else None
        return view
