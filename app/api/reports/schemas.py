"""Marshmallow schemas of the reports a reviewer defends a run with: estimate, agreement, audit, PRISMA, methods."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.services.audit import MAX_AUDIT_SAMPLE

Interval = fields.List(fields.Float(), allow_none=True)


class EstimateInputSchema(Schema):
    task_type = fields.String(load_default="title_abstract", validate=validate.OneOf(["title_abstract"]))


class ModelEstimateSchema(Schema):
    model = fields.String()
    calls = fields.Integer()
    prompt_tokens = fields.Integer()
    completion_tokens = fields.Integer()
    completion_tokens_basis = fields.String()
    cost_usd = fields.Float()


class EstimateSchema(Schema):
    records = fields.Integer()
    calls = fields.Integer()
    prompt_tokens = fields.Integer()
    completion_tokens = fields.Integer()
    cost_usd = fields.Float()
    by_model = fields.List(fields.Nested(ModelEstimateSchema))
    assumptions = fields.String()


class ConfusionSchema(Schema):
    true_positive = fields.Integer()
    false_negative = fields.Integer()
    true_negative = fields.Integer()
    false_positive = fields.Integer()


class AgreementSchema(Schema):
    task_id = fields.Integer()
    n = fields.Integer()
    recall = fields.Float(allow_none=True)
    recall_ci95 = fields.List(fields.Float(), allow_none=True)
    specificity = fields.Float(allow_none=True)
    specificity_ci95 = fields.List(fields.Float(), allow_none=True)
    work_saved = fields.Float(allow_none=True)
    work_saved_ci95 = fields.List(fields.Float(), allow_none=True)
    kappa = fields.Float(allow_none=True)
    kappa_ci95 = fields.List(fields.Float(), allow_none=True)
    ac1 = fields.Float(allow_none=True)
    ac1_ci95 = fields.List(fields.Float(), allow_none=True)
    confusion = fields.Nested(ConfusionSchema)
    definition = fields.String()


class AuditSampleInputSchema(Schema):
    size = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_AUDIT_SAMPLE))


class AuditSchema(Schema):
    task_id = fields.Integer()
    machine_excluded = fields.Integer()
    sampled = fields.Integer()
    reviewed = fields.Integer()
    missed_includes = fields.Integer()
    miss_rate = fields.Float(allow_none=True)
    miss_rate_upper_95 = fields.Float(allow_none=True)
    missed_records_upper_95 = fields.Integer(allow_none=True)
    sample_for_1pct_bound = fields.Integer()
    meaning = fields.String()
    added = fields.Integer()
    result_ids = fields.List(fields.Integer())


class PrismaArgsSchema(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "svg"]))


class PrismaIdentificationSchema(Schema):
    by_source = fields.Dict(keys=fields.String(), values=fields.Integer())
    identified = fields.Integer()
    duplicates_removed = fields.Integer()


class PrismaScreeningSchema(Schema):
    task_id = fields.Integer(allow_none=True)
    records_screened = fields.Integer()
    marked_ineligible_by_automation = fields.Integer()
    screened_by_humans = fields.Integer()
    excluded_by_humans = fields.Integer()
    awaiting_human_decision = fields.Integer()
    sent_to_fulltext = fields.Integer()


class PrismaFulltextSchema(Schema):
    task_id = fields.Integer(allow_none=True)
    reports_sought = fields.Integer(allow_none=True)
    reports_not_retrieved = fields.Integer(allow_none=True)
    reports_assessed = fields.Integer(allow_none=True)
    reports_excluded = fields.Integer(allow_none=True)
    exclusion_reasons = fields.Dict(keys=fields.String(), values=fields.Integer())
    studies_included = fields.Integer(allow_none=True)


class PrismaSchema(Schema):
    project_id = fields.Integer()
    identification = fields.Nested(PrismaIdentificationSchema)
    screening = fields.Nested(PrismaScreeningSchema)
    fulltext = fields.Nested(PrismaFulltextSchema)


class MethodsArgsSchema(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "text"]))


class ReviewerSchema(Schema):
    name = fields.String()
    decisions = fields.Integer()


class MethodsSchema(Schema):
    task_id = fields.Integer()
    text = fields.String()
    tool_version = fields.String()
    models = fields.List(fields.String())
    prompt_version = fields.String(allow_none=True)
    prompt_sha256 = fields.String()
    parameters = fields.Dict()
    decision_rule = fields.String()
    reviewers = fields.List(fields.Nested(ReviewerSchema))
    agreement = fields.Nested(AgreementSchema)
    audit = fields.Nested(AuditSchema)
