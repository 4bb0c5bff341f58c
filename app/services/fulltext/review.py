"""Human review of a full-text result field by field: a reviewer confirms or corrects a field's value.

A reviewed field keeps the machine's value (``llm_value``) and carries ``review: {value, note, reviewer_id,
reviewed_at}``; its ``value`` becomes the reviewer's. A result stops needing review when its decision needs no
human (no conflict, or a review decision was given) and no field awaits review.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from app.llm.fulltext_prompts import EXCLUSION_REASONS
from app.models import ScreeningResult, User
from app.services.fulltext.fields import fields_needing_review
from app.services.screening_results import REVIEW_DECISIONS


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
    now = datetime.now(UTC).isoformat()
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


def review_result_fields(session: Session, user: User, result: ScreeningResult, review: Mapping[str, Any]) -> None:
    """A PATCH of a result: reviewed fields, the exclusion reason and the decision, in one transaction.

    ``review``: ``{review_decision?, note?, exclusion_reason?, fields?: {name: {value, note?}}}``. Nothing is
    written when a field name is unknown (FieldReviewRejected).
    """
    decision = review.get("review_decision")
    if review.get("fields"):
        apply_field_reviews(result, user, review["fields"])
    if decision is not None or review.get("exclusion_reason") is not None:
        apply_exclusion_reason(result, decision, review.get("exclusion_reason"))
    if decision is not None:
        if decision not in REVIEW_DECISIONS:
            raise FieldReviewRejected("review_decision",
                                      f"review_decision must be one of {', '.join(REVIEW_DECISIONS)}")
        result.review_decision = decision
        result.review_note = review.get("note")
        result.reviewer_id = user.id
        result.reviewed_at = datetime.now(UTC)
        result.final_decision = decision
    refresh_review_required(result)
    session.commit()


def refresh_review_required(result: ScreeningResult) -> None:
    """``manual_review_required`` from the decision's and the fields' review state."""
    decision_pending = (result.has_conflict or result.final_decision == "conflict") and result.review_decision is None
    result.manual_review_required = bool(decision_pending or fields_needing_review(result.fields))
