"""Reports under /api/v1/asl that let a reviewer defend automation: cost estimate, agreement, audit, PRISMA, methods."""

from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from app.api.errors import api_abort
from app.api.projects.routes import load_project
from app.api.reports.schemas import (
    AgreementSchema,
    AuditSampleInputSchema,
    AuditSchema,
    CalibrationInputSchema,
    CalibrationSchema,
    DriftSchema,
    EstimateInputSchema,
    EstimateSchema,
    MethodsArgsSchema,
    MethodsSchema,
    PrismaArgsSchema,
    PrismaSchema,
)
from app.api.screening.routes import load_task
from app.api.screening.schemas import TaskSchema
from app.config import EngineSettings
from app.extensions import db
from app.services import agreement, audit, calibration, drift, engine, estimate, methods, prisma, prisma_diagram
from app.services import screening_results as results_service
from app.services.record_screening import NoModelsConfigured

blp = Blueprint("reports", __name__, url_prefix="/api/v1/asl",
                description="Cost estimate, calibration, agreement, audit with a recall bound, drift, PRISMA 2020 and "
                            "methods text")


@blp.route("/projects/<int:project_id>/screening/estimate")
class ScreeningEstimate(MethodView):
    @blp.arguments(EstimateInputSchema)
    @blp.response(200, EstimateSchema)
    @blp.alt_response(409, description="No screening models are configured")
    def post(self, data, project_id: int):
        """Estimate calls, tokens and cost of screening the project before anything is spent."""
        project = load_project(project_id)
        try:
            return estimate.estimate_screening(db.session(), project, current_app.config)
        except NoModelsConfigured as exc:
            api_abort(409, f"No screening models configured: {exc}")
            raise


@blp.route("/projects/<int:project_id>/calibration")
class StartCalibration(MethodView):
    @blp.arguments(CalibrationInputSchema)
    @blp.response(202, TaskSchema)
    @blp.alt_response(409, description="No labelled records, no models, or a run of the project is active")
    def post(self, data, project_id: int):
        """Calibrate before the full run: screen the labelled records (or a sample, or the records given) with the
        configuration the full run will use, locked on the task."""
        project = load_project(project_id)
        session = db.session()
        task = calibration.start_calibration(engine.engine_context(current_app), session, project,
                                             data.get("sample_size"), data.get("literature_ids"),
                                             data.get("batch_size"), data.get("budget_usd"))
        return results_service.task_view(session, task)


@blp.route("/tasks/<int:task_id>/calibration")
class TaskCalibration(MethodView):
    @blp.response(200, CalibrationSchema)
    @blp.alt_response(409, description="The task is not a calibration run")
    def get(self, task_id: int):
        """A calibration's agreement with the labels and the PICOS element driving the disagreements."""
        return calibration.calibration_report(db.session(), load_task(task_id))


@blp.route("/tasks/<int:task_id>/drift")
class TaskDrift(MethodView):
    @blp.response(200, DriftSchema)
    def get(self, task_id: int):
        """Test–retest agreement of a long run's fixed subset, re-screened without the cache at its end."""
        return drift.drift_view(load_task(task_id), EngineSettings.from_config(current_app.config))


@blp.route("/tasks/<int:task_id>/agreement")
class TaskAgreement(MethodView):
    @blp.response(200, AgreementSchema)
    def get(self, task_id: int):
        """Recall, specificity, work saved, Cohen's kappa and Gwet's AC1 against the records' human labels."""
        return agreement.task_agreement(db.session(), load_task(task_id))


@blp.route("/tasks/<int:task_id>/audit-sample")
class AuditSample(MethodView):
    @blp.arguments(AuditSampleInputSchema)
    @blp.response(201, AuditSchema)
    @blp.alt_response(409, description="No machine-excluded results are left to sample")
    def post(self, data, task_id: int):
        """Draw a random sample of machine-excluded results and queue it for human review."""
        task = load_task(task_id)
        try:
            return audit.draw_audit_sample(db.session(), task, data["size"])
        except audit.AuditError as exc:
            api_abort(409, str(exc))
            raise


@blp.route("/tasks/<int:task_id>/audit")
class TaskAudit(MethodView):
    @blp.response(200, AuditSchema)
    def get(self, task_id: int):
        """The audit: sampled, reviewed, missed includes and the exact upper 95 % bound on the miss rate."""
        return audit.audit_report(db.session(), load_task(task_id))


@blp.route("/projects/<int:project_id>/prisma")
class ProjectPrisma(MethodView):
    @blp.arguments(PrismaArgsSchema, location="query")
    @blp.response(200, PrismaSchema)
    @blp.doc(responses={"200": {"description": "PRISMA counts as JSON, or the flow diagram as SVG",
                                "content": {"image/svg+xml": {"schema": {"type": "string"}}}}})
    def get(self, args, project_id: int):
        """PRISMA 2020 counts of the project as JSON, or its flow diagram as SVG."""
        project = load_project(project_id)
        counts = prisma.prisma_counts(db.session(), project)
        if args["format"] == "svg":
            return Response(prisma_diagram.prisma_svg(counts, f"PRISMA 2020 flow diagram: {project.name}"),
                            mimetype="image/svg+xml")
        return counts


@blp.route("/tasks/<int:task_id>/methods")
class TaskMethods(MethodView):
    @blp.arguments(MethodsArgsSchema, location="query")
    @blp.response(200, MethodsSchema)
    @blp.doc(responses={"200": {"description": "The methods paragraph as text",
                                "content": {"text/plain": {"schema": {"type": "string"}}}}})
    def get(self, args, task_id: int):
        """The methods paragraph (PRISMA 2020 item 8, RAISE) written from the task's own records."""
        report = methods.methods_text(db.session(), load_task(task_id))
        if args["format"] == "text":
            return Response(report["text"] + "\n", mimetype="text/plain")
        return report
