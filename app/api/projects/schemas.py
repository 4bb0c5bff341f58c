"""Marshmallow schemas for projects."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

PICOS_KEYS = ("P", "I", "C", "O", "S")


class PicosSchema(Schema):
    """PICOS criteria: Population, Intervention, Comparison, Outcome, Study design (each free text)."""

    P = fields.String(load_default="", validate=validate.Length(max=5000))
    I = fields.String(load_default="", validate=validate.Length(max=5000))  # noqa: E741
    C = fields.String(load_default="", validate=validate.Length(max=5000))
    O = fields.String(load_default="", validate=validate.Length(max=5000))  # noqa: E741
    S = fields.String(load_default="", validate=validate.Length(max=5000))

    @validates_schema
    def require_some_criterion(self, data: dict, **kwargs: object) -> None:
        if not any((data.get(key) or "").strip() for key in PICOS_KEYS):
            raise ValidationError("At least one of P, I, C, O, S must be given.", "_schema")


class ProjectCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    picos = fields.Nested(PicosSchema, required=True)
    inclusion_criteria = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=20000))
    exclusion_criteria = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=20000))


class ProjectUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=300))
    picos = fields.Nested(PicosSchema)
    inclusion_criteria = fields.String(allow_none=True, validate=validate.Length(max=20000))
    exclusion_criteria = fields.String(allow_none=True, validate=validate.Length(max=20000))


class ProjectSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String()
    picos = fields.Dict()
    inclusion_criteria = fields.String(allow_none=True)
    exclusion_criteria = fields.String(allow_none=True)
    owner_id = fields.Integer()
    literature_count = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
