"""Clinical-record datasets: /api/v1/dc/datasets (upload, list, get, delete), their health report, templates."""

from __future__ import annotations

import logging

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError

from app.api.auth import current_user
from app.api.dc.schemas import (
    DatasetFormSchema,
    DatasetSchema,
    DatasetUploadSchema,
    DatasetWithHealthSchema,
    TemplateSchema,
)
from app.api.errors import api_abort
from app.api.pagination import PAGINATE_ARGS
from app.cache import Cache, get_cache
from app.extensions import db
from app.models import DcDataset
from app.services.dc import datasets as dataset_service
from app.services.dc.errors import DatasetRejected
from app.services.dc.field_schema import TEMPLATES

logger = logging.getLogger(__name__)

blp = Blueprint("dc_datasets", __name__, url_prefix="/api/v1/dc",
                description="Clinical-record extraction: datasets, health check, field templates")

MULTIPART_ALLOWANCE = 64 * 1024


def _max_bytes() -> int:
    return int(current_app.config["MAX_IMPORT_BYTES"])


def cache() -> Cache:
    """The process's cache (health reports and extraction answers)."""
    return get_cache(current_app.config)


def load_dataset(dataset_id: int) -> DcDataset:
    """The current user's dataset, or a 404 (also for another user's)."""
    try:
        return dataset_service.get_dataset(db.session(), current_user().id, dataset_id)
    except dataset_service.DatasetNotFound:
        api_abort(404, f"Dataset {dataset_id} not found.")
        raise  # unreachable: abort raises


def reject(exc: DatasetRejected) -> None:
    """Answer a rejected upload or request with its status, naming the field."""
    db.session.rollback()
    api_abort(exc.status, exc.message, errors={exc.field: [exc.message]})


@blp.before_request
def reject_oversize_body() -> None:
    """413 before the body is parsed when it is clearly over MAX_IMPORT_BYTES."""
    if request.method == "POST" and request.path.endswith("/datasets") and \
            (request.content_length or 0) > _max_bytes() + MULTIPART_ALLOWANCE:
        api_abort(413, f"The request body is larger than the upload limit of {_max_bytes()} bytes "
                       "(MAX_IMPORT_BYTES).", errors={"file": ["Too large."]})


@blp.route("/datasets")
class Datasets(MethodView):
    @blp.response(200, DatasetSchema(many=True))
    @blp.paginate(**PAGINATE_ARGS)
    def get(self, pagination_parameters):
        """List your datasets (newest first)."""
        items, total = dataset_service.list_datasets(db.session(), current_user().id,
                                                     pagination_parameters.first_item, pagination_parameters.page_size)
        pagination_parameters.item_count = total
        return items

    @blp.arguments(DatasetUploadSchema, location="files")
    @blp.response(201, DatasetWithHealthSchema)
    @blp.doc(requestBody={"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary",
                                "description": "CSV or XLSX file, one record per row."},
                       "sheet": {"type": "string", "minLength": 1, "maxLength": 255,
                                 "description": "XLSX: the sheet to read (default: the first visible one)."}}}}}})
    def post(self, files):
        """Upload a CSV or XLSX file (multipart ``file``; ``sheet`` for XLSX): rows stored as read, health checked."""
        # the form field is read here, not by a second @blp.arguments: one multipart requestBody in the OpenAPI
        try:
            form = DatasetFormSchema().load({k: v for k, v in request.form.items() if k == "sheet"})
        except ValidationError as exc:
            api_abort(422, "Invalid form field.", {"form": exc.messages})
            raise
        upload = files["file"]
        filename = upload.filename or "upload"
        data = upload.stream.read(_max_bytes() + 1)
        session = db.session()
        try:
            dataset = dataset_service.create_dataset(session, current_user().id, filename, data, form.get("sheet"),
                                                     current_app.config, cache())
        except DatasetRejected as exc:
            reject(exc)
        session.commit()
        return dataset


@blp.route("/datasets/<int:dataset_id>")
class DatasetById(MethodView):
    @blp.response(200, DatasetWithHealthSchema)
    def get(self, dataset_id: int):
        """One dataset with its health report."""
        return load_dataset(dataset_id)

    @blp.response(204)
    def delete(self, dataset_id: int):
        """Delete the dataset, its rows, its extractions with their results, and its cache entries."""
        dataset = load_dataset(dataset_id)
        dataset_service.delete_dataset(db.session(), dataset, cache())
        db.session.commit()


@blp.route("/datasets/<int:dataset_id>/health")
class DatasetHealth(MethodView):
    @blp.response(200)
    def get(self, dataset_id: int):
        """The file's health report (cached 24 h under dc:health:<sha256>)."""
        return dataset_service.dataset_health(load_dataset(dataset_id), cache())


@blp.route("/templates")
class Templates(MethodView):
    @blp.response(200, TemplateSchema(many=True))
    def get(self):
        """Ready field schemas to start from (discharge summary, pathology report)."""
        return [{"name": name, **template} for name, template in TEMPLATES.items()]
