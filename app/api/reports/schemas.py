"""Marshmallow schemas of the reports a reviewer defends a run with: estimate, agreement, audit, PRISMA, methods."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.api.request_guards import record_id_field
from app.services.audit import MAX_AUDIT_SAMPLE
from app.services.kinds.base import MAX_REQUESTED_BATCH_SIZE

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
    calibration = fields.Dict(allow_none=True, metadata={
        "description": "the calibration this run follows (task id, agreement) and the configuration differences"})
    drift = fields.Dict(allow_none=True, metadata={"description": "the run's drift check report, if any"})
    budget = fields.Dict(allow_none=True, metadata={"description": "budget_usd and budget_spent_usd, if budgeted"})


class CalibrationInputSchema(Schema):
    sample_size = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=100_000),
                                 metadata={"description": "a fixed random sample of this many labelled records "
                                                          "(default: every labelled record)"})
    literature_ids = fields.List(record_id_field(), load_default=None, allow_none=True,
                                 validate=validate.Length(min=1, max=100_000),
                                 metadata={"description": "screen these records instead of the labelled ones"})
    batch_size = fields.Integer(load_default=None, allow_none=True,
                                validate=validate.Range(min=1, max=MAX_REQUESTED_BATCH_SIZE))
    budget_usd = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0))


class PicosDriverSchema(Schema):
    element = fields.String()
    label = fields.String()
    missed_include_judgements = fields.Integer()
    false_include_judgements = fields.Integer()
    records = fields.Integer()


class DisagreementSchema(Schema):
    literature_id = fields.Integer()
    kind = fields.String(metadata={"description": "missed_include (human include, machine exclude) or "
                                                  "false_include (human exclude, machine sent on)"})
    llm_decision = fields.String(allow_none=True)
    reasons = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True))


class CalibrationSchema(Schema):
    task_id = fields.Integer()
    status = fields.String()
    records = fields.Integer()
    agreement = fields.Nested(AgreementSchema)
    disagreements = fields.List(fields.Nested(DisagreementSchema))
    picos_drivers = fields.List(fields.Nested(PicosDriverSchema))
    main_driver = fields.String(allow_none=True, metadata={"description": "the PICOS element behind most "
                                                                          "disagreements (null: none)"})
    basis = fields.String(metadata={"description": "what the PICOS analysis is based on"})
    locked_config = fields.Dict(metadata={"description": "models, parameters, prompt version and SHA-256, rule"})
    followed_by = fields.List(fields.Integer(), metadata={"description": "runs that follow this calibration"})


class DriftSchema(Schema):
    task_id = fields.Integer()
    status = fields.String(metadata={"description": "not_applicable | pending | running | done | skipped | failed"})
    reason = fields.String(allow_none=True)
    checked_at = fields.String(allow_none=True)
    records = fields.Integer(allow_none=True)
    failed = fields.Integer(allow_none=True)
    decision_agreement = fields.Float(allow_none=True)
    kappa = fields.Float(allow_none=True)
    kappa_ci95 = fields.List(fields.Float(), allow_none=True)
    by_model = fields.Dict(allow_none=True)
    changed = fields.List(fields.Dict(), allow_none=True)
    cost_usd = fields.Float(allow_none=True)
    estimated_cost_usd = fields.Float(allow_none=True)
    error = fields.String(allow_none=True)
    definition = fields.String(allow_none=True)
