"""Marshmallow schemas for screening runs, batches and results."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.api.request_guards import record_id_field
from app.llm.fulltext_prompts import EXCLUSION_REASONS
from app.models import ScreeningBatch
from app.models.statuses import BatchStatus, ResultStatus, TaskStatus
from app.services.export import EXPORT_FORMATS
from app.services.kinds import task_types
from app.services.kinds.base import MAX_REQUESTED_BATCH_SIZE
from app.services.screening_results import DECISION_FILTERS, REVIEW_DECISIONS, REVIEW_FILTERS


class StartScreeningSchema(Schema):
    task_type = fields.String(load_default="title_abstract", validate=validate.OneOf(task_types()))
    batch_size = fields.Integer(load_default=None, allow_none=True,
                                validate=validate.Range(min=1, max=MAX_REQUESTED_BATCH_SIZE))
    literature_ids = fields.List(record_id_field(), load_default=None,
                                 allow_none=True, validate=validate.Length(min=1))
    budget_usd = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0), metadata={
        "description": "Pause the run (status paused, paused_reason budget) before its LLM calls would pass this "
                       "many USD; POST …/tasks/{id}/resume continues it."})


class ResumeSchema(Schema):
    budget_usd = fields.Float(required=True, validate=validate.Range(min=0, min_inclusive=False), metadata={
        "description": "The new budget (USD); it must be above what the run has spent."})


class TaskSchema(Schema):
    id = fields.Integer()
    project_id = fields.Integer(allow_none=True)
    task_type = fields.String()
    status = fields.String(validate=validate.OneOf([s.value for s in TaskStatus]))
    total_items = fields.Integer()
    processed_items = fields.Integer()
    success_items = fields.Integer()
    failed_items = fields.Integer()
    conflict_items = fields.Integer()
    total_batches = fields.Integer()
    processed_batches = fields.Integer()
    batch_size = fields.Integer()
    progress = fields.Float()
    eta_seconds = fields.Float(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    prompt_tokens = fields.Integer()
    completion_tokens = fields.Integer()
    cost_estimate = fields.Float()
    attempt = fields.Integer()
    cancel_requested = fields.Boolean()
    models = fields.List(fields.String())
    prompt_version = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    budget_usd = fields.Float(allow_none=True, metadata={"description": "null: no budget"})
    budget_spent_usd = fields.Float(metadata={"description": "what the run's LLM calls cost so far (all workers)"})
    paused_reason = fields.String(allow_none=True, metadata={"description": "why a paused task waits, e.g. budget"})
    is_calibration = fields.Boolean()
    calibration_task_id = fields.Integer(allow_none=True, metadata={
        "description": "the finished calibration run this run follows (same project and kind)"})
    config_differences = fields.List(fields.Dict(), allow_none=True, metadata={
        "description": "settings that differ from the calibration's locked configuration: {setting, calibration, run}"})


class BatchSchema(Schema):
    batch_index = fields.Integer()
    status = fields.String(validate=validate.OneOf([s.value for s in BatchStatus]))
    cursor = fields.Integer()
    size = fields.Integer()
    attempts = fields.Integer()
    lease_owner = fields.String(allow_none=True)
    lease_expires_at = fields.DateTime(allow_none=True)
    last_checkpoint_at = fields.DateTime(allow_none=True)
    dispatched_at = fields.DateTime(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True)
    # a pending batch that ran before and failed waits for its retry: when it is due (else null)
    next_attempt_at = fields.Method("_next_attempt_at", allow_none=True)

    def _next_attempt_at(self, batch: ScreeningBatch) -> str | None:
        if batch.status != BatchStatus.PENDING or not batch.attempts or not batch.error or batch.dispatched_at is None:
            return None
        return batch.dispatched_at.isoformat()


class ModelDecisionSchema(Schema):
    model = fields.String()
    decision = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    confidence = fields.Float(allow_none=True)


class ReviewSchema(Schema):
    decision = fields.String()
    note = fields.String(allow_none=True)
    reviewer_id = fields.Integer(allow_none=True)
    reviewed_at = fields.DateTime(allow_none=True)


class ResultSchema(Schema):
    id = fields.Integer()
    task_id = fields.Integer()
    item_id = fields.Integer()
    literature_id = fields.Integer(allow_none=True)
    title = fields.String()
    decisions = fields.List(fields.Nested(ModelDecisionSchema))
    llm_decision = fields.String(allow_none=True)
    final_decision = fields.String(allow_none=True)
    has_conflict = fields.Boolean()
    manual_review_required = fields.Boolean()
    status = fields.String(validate=validate.OneOf([s.value for s in ResultStatus]))
    error = fields.String(allow_none=True)
    exclusion_reason = fields.String(allow_none=True)
    review = fields.Nested(ReviewSchema, allow_none=True)
    warnings = fields.List(fields.String(), metadata={
        "description": "e.g. the prompt was truncated to PROMPT_MAX_CHARS_PER_RECORD"})
    # per-field extraction output of extraction kinds (``fields`` would shadow the marshmallow module here)
    extracted_fields = fields.Dict(data_key="fields", attribute="fields", allow_none=True)


class ResultFilterSchema(Schema):
    decision = fields.String(load_default=None, validate=validate.OneOf(DECISION_FILTERS))
    conflict = fields.Boolean(load_default=None)
    review = fields.String(load_default=None, validate=validate.OneOf(REVIEW_FILTERS))


class FieldReviewSchema(Schema):
    value = fields.Raw(required=True, allow_none=True, metadata={"description": "The reviewer's value."})
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=5000))


class ReviewInputSchema(Schema):
    """A human review: the decision (include / exclude), and / or field by field for extraction kinds."""

    review_decision = fields.String(load_default=None, validate=validate.OneOf(REVIEW_DECISIONS))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=5000))
    exclusion_reason = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(EXCLUSION_REASONS),
                                     metadata={"description": "Full text: why the record is excluded (PRISMA)."})
    field_reviews = fields.Dict(data_key="fields", attribute="fields", load_default=None,
                                keys=fields.String(validate=validate.Length(min=1, max=100)),
                                values=fields.Nested(FieldReviewSchema), validate=validate.Length(min=1, max=100),
                                metadata={"description": "{field name: {value, note?}}: a reviewer's value per field."})

    @validates_schema
    def decision_or_fields(self, data: dict, **_kwargs: object) -> None:
        """A review changes something: a decision, or at least one field."""
        if data.get("review_decision") is None and not data.get("fields"):
            raise ValidationError("Send review_decision, fields, or both.", "review_decision")


class ExportArgsSchema(Schema):
    format = fields.String(load_default="csv", validate=validate.OneOf(EXPORT_FORMATS))
