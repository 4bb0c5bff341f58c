"""Workspace pages for projects: the list, a new project (PICOS and criteria), a project, and file import."""

from __future__ import annotations

from typing import Any

from flask import current_app, redirect, render_template, request, url_for
from marshmallow import ValidationError

from app.api.projects.schemas import PICOS_KEYS, ProjectCreateSchema
from app.cache import get_cache
from app.config import Settings
from app.extensions import db
from app.importers import ImportRejected
from app.models import Project
from app.services import literature as literature_service
from app.services import projects as project_service
from app.services import screening_results as results_service
from app.services.fulltext.attach import AttachRejected, attach_fulltexts
from app.services.possible_duplicates import find_possible_duplicates
from app.web.auth import reviewer
from app.web.blueprint import bp

PICOS_LABELS = {"P": "Population", "I": "Intervention", "C": "Comparison", "O": "Outcome", "S": "Study design"}
PROJECTS_SHOWN = 200
TASKS_SHOWN = 50
DUPLICATES_SHOWN = 20
RECORDS_SHOWN = 100


def load_project(project_id: int) -> Project:
    """The reviewer's project (ProjectNotFound, shown as a 404, also for another user's project)."""
    return project_service.get_project(db.session(), reviewer(), project_id)


@bp.route("/")
def projects() -> str:
    """The reviewer's projects."""
    items, total = project_service.list_projects(db.session(), reviewer(), 0, PROJECTS_SHOWN)
    dc_tasks = results_service.list_user_tasks(db.session(), reviewer(), "dc_extraction", TASKS_SHOWN)
    return render_template("web/projects.html", projects=items, total=total, dc_tasks=dc_tasks)


def _project_form_data(form: Any) -> dict[str, Any]:
    return {
        "name": form.get("name", "").strip(),
        "picos": {key: form.get(f"picos_{key}", "").strip() for key in PICOS_KEYS},
        "inclusion_criteria": form.get("inclusion_criteria", "").strip() or None,
        "exclusion_criteria": form.get("exclusion_criteria", "").strip() or None,
    }


@bp.route("/projects/new", methods=["GET", "POST"])
def new_project() -> Any:
    """Create a project: name, PICOS and criteria (validated by the API's own schema)."""
    errors: dict[str, Any] = {}
    data = _project_form_data(request.form) if request.method == "POST" else {"picos": {}}
    if request.method == "POST":
        try:
            loaded = ProjectCreateSchema().load(data)
        except ValidationError as exc:
            errors = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        else:
            project = project_service.create_project(db.session(), reviewer(), loaded)
            return redirect(url_for("web.project", project_id=project.id))
    return render_template("web/project_new.html", data=data, errors=errors, picos_labels=PICOS_LABELS,
                           picos_keys=PICOS_KEYS), 422 if errors else 200


def _project_page(project: Project, **extra: Any) -> str:
    session = db.session()
    records, record_count = literature_service.list_literature(session, project, 0, RECORDS_SHOWN)
    tasks, _total = results_service.list_tasks(session, project, 0, TASKS_SHOWN)
    return render_template("web/project.html", project=project, record_count=record_count, records=records,
                           tasks=[results_service.task_view(session, task) for task in tasks],
                           picos_labels=PICOS_LABELS, **extra)


@bp.route("/projects/<int:project_id>")
def project(project_id: int) -> str:
    """A project: PICOS, records, the import form and its runs."""
    return _project_page(load_project(project_id))


@bp.route("/projects/<int:project_id>/import", methods=["POST"])
def import_file(project_id: int) -> Any:
    """Import an export file and show the import report (counts, skipped records, warnings, possible duplicates)."""
    project = load_project(project_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _project_page(project, import_error="Choose a file to import."), 422
    config = current_app.config
    max_bytes = int(config["MAX_IMPORT_BYTES"])
    source = (request.form.get("source") or "").strip()[:200] or None
    try:
        summary = literature_service.import_file(
            db.session(), project, upload.filename, upload.stream.read(max_bytes + 1), max_bytes=max_bytes,
            max_records=int(config["MAX_IMPORT_RECORDS"]), source_label=source,
            max_line_chars=int(config["MAX_IMPORT_LINE_CHARS"]))
    except ImportRejected as exc:
        db.session().rollback()
        return _project_page(project, import_error=exc.message), exc.status
    duplicates = find_possible_duplicates(db.session(), project)
    return _project_page(project, summary=summary.to_dict(), filename=upload.filename,
                         possible_duplicates=duplicates[:DUPLICATES_SHOWN], possible_total=len(duplicates))


@bp.route("/projects/<int:project_id>/fulltexts", methods=["POST"])
def attach_fulltext(project_id: int) -> Any:
    """Attach full texts: one PDF to a record, or a ZIP of PDFs named by literature id, DOI or PMID."""
    project = load_project(project_id)
    upload = request.files.get("fulltext")
    if upload is None or not upload.filename:
        return _project_page(project, fulltext_error="Choose a PDF or a ZIP of PDFs."), 422
    settings = Settings.of(current_app.config)
    data = upload.stream.read(settings.fulltext.max_upload_bytes + 1)
    if len(data) > settings.fulltext.max_upload_bytes:
        return _project_page(project, fulltext_error="The file is larger than FULLTEXT_MAX_UPLOAD_BYTES."), 413
    raw_id = (request.form.get("literature_id") or "").strip()
    if raw_id and not raw_id.isdigit():
        return _project_page(project, fulltext_error="The record id must be a number."), 422
    session = db.session()
    try:
        summary = attach_fulltexts(session, project, upload.filename, data, int(raw_id) if raw_id else None,
                                   get_cache(settings), settings)
    except AttachRejected as exc:
        session.rollback()
        return _project_page(project, fulltext_error=exc.message), exc.status
    return _project_page(project, fulltext_summary=summary.to_dict(), fulltext_filename=upload.filename)
