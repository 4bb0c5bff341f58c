"""Marshmallow schemas for attaching full texts and reading a record's full-text summary."""

from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import Schema, fields


class FulltextUploadSchema(Schema):
    """Multipart upload: one PDF (with a ``literature_id`` form field), or a ZIP of PDFs named by record."""

    file = Upload(required=True, metadata={"description": "A PDF, or a ZIP of PDFs named by literature id, DOI "
                                                          "or PMID."})


class FailedFileSchema(Schema):
    name = fields.String()
    reason = fields.String()


class AttachSummarySchema(Schema):
    attached = fields.Integer(metadata={"description": "Records that now have a usable full text."})
    unmatched = fields.List(fields.String(), metadata={"description": "ZIP entries whose name matched no record."})
    failed = fields.List(fields.Nested(FailedFileSchema))
    literature_ids = fields.List(fields.Integer(), metadata={"description": "The records attached."})


class FulltextSummarySchema(Schema):
    literature_id = fields.Integer()
    sha256 = fields.String()
    pages = fields.Integer()
    chars = fields.Integer()
    text_available = fields.Boolean()
    filename = fields.String(allow_none=True)
    size_bytes = fields.Integer()
    extractor = fields.String(allow_none=True)
    created_at = fields.DateTime()
