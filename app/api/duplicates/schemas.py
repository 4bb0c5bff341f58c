"""Marshmallow schemas for possible duplicates, merges and the import history."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.api.literatures.schemas import LiteratureSchema


class PossibleDuplicateSchema(Schema):
    literature_ids = fields.List(fields.Integer(), metadata={"description": "the two records"})
    reason = fields.String()
    score = fields.Float(metadata={"description": "title similarity 0–1 (1 for exact matches)"})
    records = fields.List(fields.Nested(LiteratureSchema))


class MergeSchema(Schema):
    keep_id = fields.Integer(required=True, metadata={"description": "the record to keep"})
    merge_ids = fields.List(fields.Integer(), required=True, validate=validate.Length(min=1, max=100),
                            metadata={"description": "records merged into it, then removed"})


class MergeResultSchema(Schema):
    record = fields.Nested(LiteratureSchema)
    merged_ids = fields.List(fields.Integer())
    warnings = fields.List(fields.String())


class DismissSchema(Schema):
    literature_ids = fields.List(fields.Integer(), required=True, validate=validate.Length(min=2, max=100),
                                 metadata={"description": "records that are different studies"})


class DismissResultSchema(Schema):
    dismissed = fields.List(fields.Integer())


class DatabaseCountSchema(Schema):
    name = fields.String()
    records_identified = fields.Integer()
    duplicates_removed = fields.Integer()
    records_imported = fields.Integer()


class ImportBatchSchema(Schema):
    id = fields.Integer()
    filename = fields.String(allow_none=True)
    format = fields.String()
    encoding = fields.String(allow_none=True)
    source_label = fields.String(allow_none=True)
    records_identified = fields.Integer()
    records_imported = fields.Integer()
    duplicates_removed = fields.Integer()
    skipped = fields.Integer()
    by_database = fields.Dict()
    warnings = fields.List(fields.String())
    created_at = fields.String()


class IdentificationSchema(Schema):
    databases = fields.List(fields.Nested(DatabaseCountSchema))
    records_identified = fields.Integer()
    duplicates_removed = fields.Integer()
    duplicates_removed_automatically = fields.Integer()
    duplicates_merged_by_reviewers = fields.Integer()
    records_skipped = fields.Integer()
    records_after_duplicates_removed = fields.Integer()
    imports = fields.List(fields.Nested(ImportBatchSchema))
