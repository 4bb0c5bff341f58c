"""Full texts: attach PDFs to a project's records, read a record's full-text summary."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from app.api.auth import current_user
from app.api.errors import api_abort
from app.api.fulltexts.schemas import AttachSummarySchema, FulltextSummarySchema, FulltextUploadSchema
from app.api.projects.routes import load_project
from app.cache import get_cache
from app.config import Settings
from app.extensions import db
from app.models import Literature, Project
from app.services.fulltext.attach import AttachRejected, attach_fulltexts, fulltext_of

logger = logging.getLogger(__name__)

blp = Blueprint("fulltexts", __name__, url_prefix="/api/v1/asl", description="Full texts (PDF) of records")

MULTIPART_ALLOWANCE = 64 * 1024


def _max_upload() -> int:
    return Settings.of(current_app.config).fulltext.max_upload_bytes


@blp.before_request
def upload_limit() -> None:
    """This blueprint's uploads may be larger than record imports (FULLTEXT_MAX_UPLOAD_BYTES), never unbounded."""
    if request.method != "POST":
        return
    request.max_content_length = _max_upload() + MULTIPART_ALLOWANCE
    if (request.content_length or 0) > _max_upload() + MULTIPART_ALLOWANCE:
        api_abort(413, f"The upload is larger than the limit of {_max_upload()} bytes (FULLTEXT_MAX_UPLOAD_BYTES).",
                  errors={"file": ["Too large."]})


@blp.route("/projects/<int:project_id>/fulltexts")
class ProjectFulltexts(MethodView):
    @blp.arguments(FulltextUploadSchema, location="files")
    @blp.response(201, AttachSummarySchema)
    @blp.doc(requestBody={"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "properties": {"file": {"type": "string", "format": "binary"},
                                         "literature_id": {"type": "integer"}}}}}})
    def post(self, files: dict[str, Any], project_id: int):
        """Attach full texts: one PDF with literature_id, or a ZIP of PDFs named by literature id, DOI or PMID."""
        project = load_project(project_id)
        literature_id = _literature_id_field()
        upload = files["file"]
        data = upload.stream.read(_max_upload() + 1)
        if len(data) > _max_upload():
            api_abort(413, f"The upload is larger than the limit of {_max_upload()} bytes "
                           "(FULLTEXT_MAX_UPLOAD_BYTES).", errors={"file": ["Too large."]})
        if not data:
            api_abort(422, "The uploaded file is empty.", errors={"file": ["Empty file."]})
        session = db.session()
        settings = Settings.of(current_app.config)
        try:
            summary = attach_fulltexts(session, project, upload.filename or "upload.pdf", data, literature_id,
                                       get_cache(settings), settings)
        except AttachRejected as exc:
            session.rollback()
            api_abort(exc.status, exc.message, errors={exc.field: [exc.message]})
        return summary.to_dict()


def _literature_id_field() -> int | None:
    """The ``literature_id`` form field (a multipart text field, validated here: 422 naming it)."""
    raw = request.form.get("literature_id")
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        api_abort(422, "literature_id must be a positive integer.", errors={"literature_id": ["Not a valid id."]})
    return value


@blp.route("/literatures/<int:literature_id>/fulltext")
class LiteratureFulltext(MethodView):
    @blp.response(200, FulltextSummarySchema)
    def get(self, literature_id: int):
        """A record's attached full text: SHA-256, pages, characters and whether it has a text layer."""
        session = db.session()
        owned = session.scalar(
            select(Literature.id).join(Project, Project.id == Literature.project_id)
            .where(Literature.id == literature_id, Project.owner_id == current_user().id))
        if owned is None:
            api_abort(404, f"Record {literature_id} not found.")
        fulltext = fulltext_of(session, literature_id)
        if fulltext is None:
            api_abort(404, f"Record {literature_id} has no full text attached.")
        return fulltext
