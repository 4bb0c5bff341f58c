"""Marshmallow schemas of the clinical-record extraction API (datasets, templates, extractions)."""

from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, validate, validates_schema
from marshmallow import fields as ma

from app.services.dc.field_schema import FieldSchemaSchema
from app.services.kinds.base import MAX_REQUESTED_BATCH_SIZE
from app.services.screening_results import REVIEW_FILTERS

# the final decision of an extraction result: agreed, conflict (models disagree), review (a required field
# unverified or missing), reviewed (a human settled every flagged field), failed
DC_DECISION_FILTERS = ("agreed", "conflict", "review", "reviewed", "failed")


class DatasetUploadSchema(Schema):
    """Multipart upload: a CSV or XLSX file, and for XLSX optionally the sheet to read."""

    file = Upload(required=True, metadata={"description": "CSV or XLSX file, one record per row."})


class DatasetFormSchema(Schema):
    sheet = ma.String(load_default=None, validate=validate.Length(min=1, max=255),
                          metadata={"description": "XLSX: the sheet to read (default: the first visible one)."})


class DatasetSchema(Schema):
    id = ma.Integer()
    filename = ma.String()
    file_format = ma.String()
    sheet = ma.String(allow_none=True)
    sha256 = ma.String()
    size_bytes = ma.Integer()
    rows = ma.Integer(attribute="row_count")
    columns = ma.List(ma.String())
    created_at = ma.DateTime()


class DatasetWithHealthSchema(DatasetSchema):
    health = ma.Dict()


class TemplateSchema(Schema):
    name = ma.String()
    title = ma.String()
    description = ma.String()
    field_list = ma.List(ma.Dict(), data_key="fields", attribute="fields")


class StartExtractionSchema(Schema):
    id_column = ma.String(required=True, validate=validate.Length(min=1, max=255))
    text_columns = ma.List(ma.String(validate=validate.Length(min=1, max=255)), required=True,
                               validate=validate.Length(min=1, max=20))
    schema = ma.Nested(FieldSchemaSchema, required=True)
    gold_columns = ma.Dict(keys=ma.String(), values=ma.String(), load_default=None, allow_none=True)
    batch_size = ma.Integer(load_default=None, allow_none=True,
                                validate=validate.Range(min=1, max=MAX_REQUESTED_BATCH_SIZE))
    budget_usd = ma.Float(load_default=None, allow_none=True, validate=validate.Range(min=0))

    @validates_schema
    def check_gold_fields(self, data, **kwargs) -> None:
        """``gold_columns`` keys are field names of the schema."""
        names = {f["name"] for f in (data.get("schema") or {}).get("fields") or []}
        unknown = sorted(set(data.get("gold_columns") or {}) - names)
        if unknown:
            raise ValidationError(f"not fields of the schema: {', '.join(unknown)}", "gold_columns")


class ClinicalFieldReviewSchema(Schema):
    value = ma.Raw(required=True, allow_none=True, metadata={"description": "The human's value for the field."})
    note = ma.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ResultReviewSchema(Schema):
    """``{fields: {name: {value, note?}}}``: a human's value for each reviewed field."""

    field_reviews = ma.Dict(keys=ma.String(), values=ma.Nested(ClinicalFieldReviewSchema), required=True,
                            data_key="fields", attribute="fields", validate=validate.Length(min=1))
    note = ma.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class DcResultFilterSchema(Schema):
    decision = ma.String(load_default=None, validate=validate.OneOf(DC_DECISION_FILTERS))
    conflict = ma.Boolean(load_default=None)
    review = ma.String(load_default=None, validate=validate.OneOf(REVIEW_FILTERS))


class DcExportArgsSchema(Schema):
    format = ma.String(load_default="csv", validate=validate.OneOf(("csv", "xlsx")))
