"""Human review of a full-text result field by field: a reviewer confirms or corrects a field's value.

A reviewed field keeps the machine's value (``llm_value``) and carries ``review: {value, note, reviewer_id,
reviewed_at}``; its ``value`` becomes the reviewer's. A result stops needing review when its decision needs no
human (no conflict, or a review decision was given) and no field awaits review.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from app.llm.fulltext_prompts import EXCLUSION_REASONS
from app.models import ScreeningResult, User
from app.services.fulltext.fields import fields_needing_review


class FieldReviewRejected(ValueError):
    """A field review names no field of this result, or is malformed; ``field`` names the bad input."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def apply_field_reviews(result: ScreeningResult, user: User, reviews: Mapping[str, Mapping[str, Any]]) -> None:
    """Set each reviewed field's value (the caller commits). FieldReviewRejected before anything changes."""
    current = result.fields or {}
    unknown = [name for name in reviews if name not in current]
    if unknown:
        raise FieldReviewRejected(f"fields.{unknown[0]}", f"result {result.id} has no field {unknown[0]!r}; its "
                                                          f"fields are {', '.join(current) or 'none'}")
    updated = copy.deepcopy(current)
    now = datetime.now(timezone.utc).isoformat()
    for name, review in reviews.items():
        entry = updated[name]
        entry.setdefault("llm_value", entry.get("value"))
        entry["value"] = review.get("value")
        entry["review"] = {"value": review.get("value"), "note": review.get("note"), "reviewer_id": user.id,
                           "reviewed_at": now}
        entry["review_required"] = False
    result.fields = updated   # a new object, so the JSONB column is written


def apply_exclusion_reason(result: ScreeningResult, decision: str | None, reason: str | None) -> None:
    """A human's full-text exclusion reason (kept from the models when not given); cleared on include."""
    if reason is not None and reason not in EXCLUSION_REASONS:
        raise FieldReviewRejected("exclusion_reason", f"exclusion_reason must be one of {', '.join(EXCLUSION_REASONS)}")
    if decision == "include":
        result.exclusion_reason = None
    elif reason is not None:
        result.exclusion_reason = reason
    elif decision == "exclude" and not result.exclusion_reason:
        result.exclusion_reason = "other"


def refresh_review_required(result: ScreeningResult) -> None:
    """``manual_review_required`` from the decision's and the fields' review state."""
    decision_pending = (result.has_conflict or result.final_decision == "conflict") and result.review_decision is None
    result.manual_review_required = bool(decision_pending or fields_needing_review(result.fields))
