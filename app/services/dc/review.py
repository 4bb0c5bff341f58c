"""Human review of an extraction result, per field: the reviewer's value (normalised by the field's type)
replaces the machine's in exports and the final-value accuracy; the machine's values are kept beside it."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from app.models import ScreeningResult
from app.services.dc.errors import DatasetRejected
from app.services.extraction import FieldSpec, NormalisationError, normalise_value

logger = logging.getLogger(__name__)

REVIEWED = "reviewed"


def pending_review(fields: Mapping[str, Any] | None) -> list[str]:
    """Fields that need a human and have none yet."""
    return [name for name, entry in (fields or {}).items()
            if entry.get("review_required") and not entry.get("review")]


def review_result(result: ScreeningResult, specs: Sequence[FieldSpec], reviews: Mapping[str, Mapping[str, Any]],
                  note: str | None, reviewer_id: int) -> ScreeningResult:
    """Record the reviewer's values on ``result`` (not committed); DatasetRejected(422) names a bad field."""
    by_name = {s.name: s for s in specs}
    if result.fields is None:
        raise DatasetRejected(409, "This record failed extraction and has no fields to review; retry the task.",
                              field="fields")
    fields = copy.deepcopy(result.fields)
    now = datetime.now(UTC)
    for name, review in reviews.items():
        spec = by_name.get(name)
        if spec is None:
            raise DatasetRejected(422, f"'{name}' is not a field of this extraction.", field=f"fields.{name}")
        try:
            value = normalise_value(review.get("value"), spec)
        except NormalisationError as exc:
            raise DatasetRejected(422, str(exc), field=f"fields.{name}") from None
        entry = fields.setdefault(name, {"value": None, "agreed": False, "by_model": {}, "flags": []})
        entry["review"] = {"value": value, "note": review.get("note"), "reviewer_id": reviewer_id,
                           "reviewed_at": now.isoformat()}
    result.fields = fields
    result.manual_review_required = bool(pending_review(fields))
    result.review_decision = REVIEWED
    if note is not None:
        result.review_note = note
    result.reviewer_id = reviewer_id
    result.reviewed_at = now
    result.final_decision = REVIEWED if not result.manual_review_required else result.llm_decision
    return result
