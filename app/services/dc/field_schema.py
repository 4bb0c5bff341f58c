"""The field schema of an extraction, ``{fields: [{name, type, description, enum?, unit?, required?}]}``,
validated with marshmallow (errors name the field by its position: ``fields.2.unit``), and ready templates.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.services.extraction import FIELD_TYPES, FieldSpec
from app.services.extraction.normalise import unit_registry

logger = logging.getLogger(__name__)

MAX_FIELDS = 50
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


class FieldDefinitionSchema(Schema):
    """One field of the schema."""

    name = fields.String(required=True, validate=validate.Regexp(
        FIELD_NAME, error="must start with a letter and hold only letters, digits and _ (at most 63)"))
    type = fields.String(required=True, validate=validate.OneOf(FIELD_TYPES))
    description = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    enum = fields.List(fields.String(validate=validate.Length(min=1, max=200)), load_default=None,
                       validate=validate.Length(min=1, max=100))
    unit = fields.String(load_default=None, validate=validate.Length(min=1, max=50))
    required = fields.Boolean(load_default=False)

    @validates_schema
    def check_type_options(self, data: dict[str, Any], **kwargs: Any) -> None:
        """``enum`` is required for enums (allowed for lists), ``unit`` only for numbers and must be a unit."""
        kind = data.get("type")
        if kind == "enum" and not data.get("enum"):
            raise ValidationError("an enum field needs a non-empty 'enum' list", "enum")
        if data.get("enum") and kind not in ("enum", "list"):
            raise ValidationError("'enum' applies to enum and list fields only", "enum")
        if data.get("enum") and len({v.casefold() for v in data["enum"]}) != len(data["enum"]):
            raise ValidationError("'enum' values must be distinct (case-insensitively)", "enum")
        unit = data.get("unit")
        if unit is not None:
            if kind not in ("number", "integer"):
                raise ValidationError("'unit' applies to number and integer fields only", "unit")
            try:
                unit_registry().Unit(unit)
            except Exception:  # noqa: BLE001 - pint raises unrelated types for unknown or malformed units
                raise ValidationError(f"unknown unit {unit!r}", "unit") from None


class FieldSchemaSchema(Schema):
    """The whole schema."""

    # ``fields`` as a class attribute would shadow marshmallow's own ``Schema.fields``
    field_list = fields.List(fields.Nested(FieldDefinitionSchema), required=True, data_key="fields",
                             attribute="fields", validate=validate.Length(min=1, max=MAX_FIELDS))

    @validates_schema
    def check_unique_names(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Field names are unique."""
        names = [f["name"] for f in data.get("fields") or []]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValidationError(f"field names must be unique; repeated: {', '.join(duplicates)}", "fields")


def load_field_schema(data: Any) -> list[FieldSpec]:
    """Validated ``FieldSpec``s; marshmallow ``ValidationError`` with per-field messages otherwise."""
    loaded = FieldSchemaSchema().load(data if isinstance(data, dict) else {"fields": data})
    return [FieldSpec.from_dict(f) for f in loaded["fields"]]


def _field(name: str, type_: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "description": description, **extra}


TEMPLATES: dict[str, dict[str, Any]] = {
    "discharge_summary": {
        "title": "Discharge summary / visit note",
        "description": "Demographics, complaint, diagnoses, medications and key findings of a clinical note.",
        "fields": [
            _field("age", "integer", "Patient age in years at the visit", unit="year", required=True),
            _field("sex", "enum", "Patient sex as stated", enum=["male", "female", "other"], required=True),
            _field("chief_complaint", "string", "The chief complaint or reason for the visit, in a few words",
                   required=True),
            _field("diagnoses", "list", "Diagnoses or conditions named in the assessment and plan"),
            _field("medications", "list", "Medications named, with dose if stated"),
            _field("smoking_status", "enum", "Smoking status", enum=["current", "former", "never"]),
            _field("ejection_fraction", "number", "Left ventricular ejection fraction", unit="percent"),
            _field("admission_date", "date", "Date of admission or of the visit"),
        ],
    },
    "pathology_report": {
        "title": "Pathology report",
        "description": "Specimen, histology, grade, stage and margins of a surgical pathology report.",
        "fields": [
            _field("specimen_site", "string", "Anatomical site of the specimen", required=True),
            _field("histologic_type", "string", "Histologic type of the tumour", required=True),
            _field("grade", "enum", "Histologic grade", enum=["G1", "G2", "G3", "G4", "GX"]),
            _field("tumour_size", "number", "Largest tumour dimension", unit="mm"),
            _field("pt_stage", "string", "Pathological T stage (pT)"),
            _field("pn_stage", "string", "Pathological N stage (pN)"),
            _field("margins_involved", "boolean", "Whether any resection margin is involved by tumour"),
            _field("lymph_nodes_positive", "integer", "Number of lymph nodes with metastasis"),
            _field("report_date", "date", "Date the report was signed out"),
        ],
    },
}
