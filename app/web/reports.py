"""Workspace pages for reports: agreement, the audit with its recall bound, PRISMA 2020, methods, exports."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.extensions import db
from app.services import agreement, audit, export, methods, prisma, prisma_diagram
from app.services.dc import export as dc_export
from app.web.blueprint import bp
from app.web.projects import load_project
from app.web.runs import load_task

EXPORT_TYPES = {
    "csv": "text/csv",
    "ris": "application/x-research-info-systems",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@bp.route("/tasks/<int:task_id>/report")
def report(task_id: int) -> str:
    """Agreement with human labels, the audit, the PRISMA diagram, the methods paragraph and the exports."""
    run = load_task(task_id)
    session = db.session()
    project = load_project(run.project_id) if run.project_id is not None else None
    context: dict[str, Any] = {"task": run, "project": project, "formats": export_formats(run.task_type)}
    if run.task_type in ("title_abstract", "fulltext"):
        context.update(agreement=agreement.task_agreement(session, run), audit=audit.audit_report(session, run),
                       methods=methods.methods_text(session, run))
    return render_template("web/report.html", **context)


def export_formats(task_type: str) -> list[str]:
    """The download formats of a task kind (clinical extractions have no RIS)."""
    return ["csv", "xlsx"] if task_type == "dc_extraction" else list(EXPORT_TYPES)


@bp.route("/tasks/<int:task_id>/audit-sample", methods=["POST"])
def audit_sample(task_id: int) -> BaseResponse:
    """Draw a random sample of machine-excluded results for review."""
    run = load_task(task_id)
    size = request.form.get("size", type=int)
    try:
        drawn = audit.draw_audit_sample(db.session(), run, size or 0)
    except audit.AuditError as exc:
        db.session().rollback()
        flash(f"No sample drawn: {exc}.")
        return redirect(url_for("web.report", task_id=run.id))
    flash(f"{drawn['added']} machine-excluded records were added to the audit queue.")
    return redirect(url_for("web.review_queue_page", task_id=run.id, queue="audit"))


@bp.route("/projects/<int:project_id>/prisma.svg")
def prisma_svg(project_id: int) -> Response:
    """The project's PRISMA 2020 flow diagram (the API's SVG)."""
    project = load_project(project_id)
    counts = prisma.prisma_counts(db.session(), project)
    return Response(prisma_diagram.prisma_svg(counts, f"PRISMA 2020 flow diagram: {project.name}"),
                    mimetype="image/svg+xml")


@bp.route("/tasks/<int:task_id>/export.<fmt>")
def export_file(task_id: int, fmt: str) -> Response:
    """Download the results as CSV, RIS or XLSX."""
    run = load_task(task_id)
    if fmt not in export_formats(run.task_type):
        abort(404)
    session = db.session()
    body: str | bytes
    if run.task_type == "dc_extraction":
        body = dc_export.export_xlsx(session, run) if fmt == "xlsx" else dc_export.export_csv(session, run)
    elif fmt == "ris":
        body = export.export_ris(session, run)
    elif fmt == "xlsx":
        body = export.export_xlsx(session, run)
    else:
        body = export.export_csv(session, run)
    return Response(body, mimetype=EXPORT_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="litscreen-task-{run.id}.{fmt}"'})
