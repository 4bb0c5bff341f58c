"""Records of a project: /api/v1/asl/projects/{id}/literatures (import as JSON or file upload; list)."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError

from app.api.errors import api_abort
from app.api.literatures.schemas import (
    ImportSummarySchema,
    LiteratureImportSchema,
    LiteratureSchema,
    LiteratureSourceFormSchema,
)
from app.api.pagination import PAGINATE_ARGS
from app.api.projects.routes import load_project
from app.extensions import db
from app.services import literature as literature_service

logger = logging.getLogger(__name__)

blp = Blueprint(
    "literatures", __name__, url_prefix="/api/v1/asl/projects", description="Bibliographic records of a project"
)

# Multipart framing around an uploaded file; the file itself is checked against MAX_IMPORT_BYTES exactly.
MULTIPART_ALLOWANCE = 64 * 1024

REQUEST_BODY_DOC = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/LiteratureImport"}},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": "RIS, MEDLINE (.nbib), BibTeX, CSV, Web of Science or "
                                                   "EndNote XML export."},
                           "source": {"type": "string", "maxLength": 200,
                                      "description": "the database the export came from"}},
        }},
    },
}


def _max_bytes() -> int:
    return int(current_app.config["MAX_IMPORT_BYTES"])


@blp.before_request
def reject_oversize_body() -> None:
    """413 before the body is parsed when it is clearly over MAX_IMPORT_BYTES."""
    if request.method == "POST" and (request.content_length or 0) > _max_bytes() + MULTIPART_ALLOWANCE:
        api_abort(
            413,
            f"The request body is larger than the import limit of {_max_bytes()} bytes (MAX_IMPORT_BYTES).",
            errors={"file" if request.mimetype == "multipart/form-data" else "records": ["Too large."]},
        )


@blp.route("/<int:project_id>/literatures")
class Literatures(MethodView):
    @blp.response(200, LiteratureSchema(many=True))
    @blp.paginate(**PAGINATE_ARGS)
    def get(self, pagination_parameters, project_id: int):
        """List a project's records (in import order)."""
        project = load_project(project_id)
        items, total = literature_service.list_literature(
            db.session(), project, pagination_parameters.first_item, pagination_parameters.page_size
        )
        pagination_parameters.item_count = total
        return items

    @blp.arguments(LiteratureImportSchema, location="json")
    @blp.response(201, ImportSummarySchema)
    @blp.doc(requestBody=REQUEST_BODY_DOC)
    def post(self, body: dict[str, Any], project_id: int):
        """Import records: JSON {records: [...]} or a multipart file (RIS, MEDLINE/.nbib, BibTeX, CSV, Web of
        Science, EndNote XML)."""
        project = load_project(project_id)
        config = current_app.config
        # the multipart part is read here, not by a second @blp.arguments: one requestBody, two media types
        upload = request.files.get("file")
        try:
            form = LiteratureSourceFormSchema().load(request.form.to_dict())
        except ValidationError as exc:
            api_abort(422, "Invalid form fields.", errors={"form": exc.messages})
        if upload is not None:
            filename = upload.filename or "upload"
            data = upload.stream.read(_max_bytes() + 1)
            summary = literature_service.import_file(
                db.session(), project, filename, data, max_bytes=_max_bytes(),
                max_records=int(config["MAX_IMPORT_RECORDS"]), source_label=form.get("source"),
                max_line_chars=int(config["MAX_IMPORT_LINE_CHARS"]),
            )
        elif body.get("records") is not None:
            literature_service.check_size(request.content_length or 0, _max_bytes(), "The request body",
                                          field="records")
            records = body["records"]
            literature_service.check_record_count(len(records), int(config["MAX_IMPORT_RECORDS"]), "records")
            summary = literature_service.import_records(db.session(), project, records, "json",
                                                        source_label=body.get("source"))
        else:
            api_abort(
                422,
                "Send JSON {\"records\": [...]} or a multipart form with an export in 'file'.",
                errors={"records": ["Missing data for required field."]},
            )
        return summary.to_dict()
