"""Per-field outcome of a full-text document: evidence verified against the text, agreement between the models.

For each of the 12 fields every model gave ``{value, evidence, page}``. The field's result is::

    {"value", "evidence", "page",          # the value shown (the first model's whose quote is in the text)
     "agreed": bool,                       # the models' values are the same after normalisation by field kind
     "verified": bool | None,              # the shown value's quote occurs in the text (None: nothing reported)
     "unverified": bool,                   # a reported value whose quote is NOT in the text
     "by_model": {model: value}, "evidence_by_model": {model: {evidence, page, verified}},
     "review_required": bool}              # disagreement or an unverified quote: a human checks this field

Evidence matching and value comparison are the shared extraction primitives (``app/services/extraction``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from app.llm.fulltext_prompts import FIELD_KINDS, FIELD_NAMES, FieldAnswer
from app.services.fulltext.checks import locate_quote, values_agree

logger = logging.getLogger(__name__)


def verify_field(answer: FieldAnswer, page_texts: list[str]) -> tuple[bool | None, int | None]:
    """(verified, page): None when nothing is reported; the page the quote is really on when found."""
    if answer.value is None and answer.evidence is None:
        return None, None
    if not answer.evidence:
        return False, answer.page
    page = locate_quote(answer.evidence, page_texts, answer.page)
    if page is None:
        return False, answer.page
    return True, page


def combine_fields(answers: Mapping[str, Mapping[str, FieldAnswer]], page_texts: list[str]) -> dict[str, Any]:
    """Every field's result (see module docstring) from ``{model: {field: FieldAnswer}}``."""
    combined: dict[str, Any] = {}
    models = list(answers)
    for name in FIELD_NAMES:
        per_model = {model: answers[model].get(name) or FieldAnswer(None, None, None) for model in models}
        checked = {model: verify_field(answer, page_texts) for model, answer in per_model.items()}
        values = [per_model[m].value for m in models]
        agreed = all(values_agree(FIELD_KINDS[name], values[0], other) for other in values[1:])
        shown = next((m for m in models if checked[m][0]), None) or next(
            (m for m in models if per_model[m].value is not None), models[0] if models else None)
        answer = per_model[shown] if shown else FieldAnswer(None, None, None)
        verified, page = checked[shown] if shown else (None, None)
        unverified = any(per_model[m].value is not None and checked[m][0] is False for m in models)
        combined[name] = {
            "value": answer.value, "evidence": answer.evidence, "page": page,
            "agreed": agreed, "verified": verified, "unverified": unverified,
            "by_model": {m: per_model[m].value for m in models},
            "evidence_by_model": {m: {"evidence": per_model[m].evidence, "page": checked[m][1],
                                      "verified": checked[m][0]} for m in models},
            "review_required": (not agreed) or unverified,
        }
    return combined


def fields_needing_review(fields: Mapping[str, Any] | None) -> list[str]:
    """Names of the fields a human still has to check."""
    return [name for name, value in (fields or {}).items()
            if isinstance(value, dict) and value.get("review_required") and not value.get("review")]
