"""Marshmallow schemas for record import and listing."""

from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import EXCLUDE, Schema, fields, validate

from app.importers.record_types import RECORD_TYPES

LABELS = ("include", "exclude")


class LiteratureRecordSchema(Schema):
    """One record to import. ``title`` must be present; a null or blank title is skipped with a reason."""

    class Meta:
        unknown = EXCLUDE

    title = fields.String(required=True, allow_none=True, validate=validate.Length(max=10000))
    abstract = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200000))
    authors = fields.List(fields.String(validate=validate.Length(max=1000)), load_default=list, allow_none=True)
    year = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1000, max=2999))
    journal = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    doi = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=255))
    pmid = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^\s*\d{1,12}\s*$"))
    keywords = fields.List(fields.String(validate=validate.Length(max=1000)), load_default=list, allow_none=True)
    source_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=255))
    label = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(LABELS))
    record_type = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(RECORD_TYPES))
    source_database = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class LiteratureImportSchema(Schema):
    """JSON import body: ``{"records": [...], "source"?}`` (or send a multipart ``file`` instead)."""

    records = fields.List(fields.Nested(LiteratureRecordSchema), metadata={"description": "Records to import."})
    source = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200),
                           metadata={"description": "The database searched (e.g. 'Embase'); replaces the "
                                                    "source database of every record of this import."})


class LiteratureSourceFormSchema(Schema):
    """Multipart form fields next to the file (other fields are ignored)."""

    class Meta:
        unknown = EXCLUDE

    source = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200),
                           metadata={"description": "The database searched (e.g. 'Embase'); replaces the "
                                                    "detected source database of every record of the file."})


class LiteratureFileSchema(Schema):
    """Multipart upload: an export file (RIS, PubMed MEDLINE/.nbib, BibTeX or CSV; detected)."""

    file = Upload(metadata={"description": "RIS, MEDLINE (.nbib), BibTeX, CSV, Web of Science (plain text or "
                                           "tab-delimited) or EndNote XML export."})


class SkippedRecordSchema(Schema):
    index = fields.Integer(metadata={"description": "0-based position of the record in the file or list."})
    reason = fields.String()


class ImportSummarySchema(Schema):
    imported = fields.Integer()
    duplicates = fields.Integer()
    skipped = fields.List(fields.Nested(SkippedRecordSchema))
    format = fields.String(metadata={"description": "json, ris, medline, bibtex, csv, wos, wos_tab or endnote_xml"})
    encoding = fields.String(allow_none=True)
    warnings = fields.List(fields.String())
    batch_id = fields.Integer(allow_none=True, metadata={"description": "id of this import (PRISMA counts)"})
    source_databases = fields.Dict(keys=fields.String(), values=fields.Integer(),
                                   metadata={"description": "records identified per source database"})


class LiteratureSchema(Schema):
    id = fields.Integer()
    project_id = fields.Integer()
    title = fields.String()
    abstract = fields.String(allow_none=True)
    authors = fields.List(fields.String())
    year = fields.Integer(allow_none=True)
    journal = fields.String(allow_none=True)
    doi = fields.String(allow_none=True)
    pmid = fields.String(allow_none=True)
    keywords = fields.List(fields.String())
    source_format = fields.String()
    source_id = fields.String(allow_none=True, metadata={"description": "accession number in the source file"})
    label = fields.String(allow_none=True)
    record_type = fields.String(allow_none=True)
    source_database = fields.Function(lambda r: (r.source_databases or [None])[0], allow_none=True)
    source_databases = fields.List(fields.String())
    import_batch_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
