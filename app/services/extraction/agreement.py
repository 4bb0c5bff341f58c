"""Agreement between models on one field, by type, on values already passed through ``normalise_value``.

Strings agree when equal after case folding, whitespace collapsing and stripping of surrounding punctuation;
numbers within the field's relative ``tolerance`` (default 1 %); dates, enums and booleans when equal
(enums case-folded); lists when equal as sets. Two absent values agree (both models found nothing).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.services.extraction.fields import FieldSpec

logger = logging.getLogger(__name__)

_PUNCT = " \t\n.,;:!?\"'()[]"


def _text_key(value: Any) -> str:
    return " ".join(str(value).split()).casefold().strip(_PUNCT)


def comparison_key(value: Any, spec: FieldSpec) -> Any:
    """The hashable form of a normalised value that equality is judged on (numbers excepted: see
    :func:`values_agree`). ``None`` stays ``None``."""
    if value is None:
        return None
    if spec.type == "list":
        items = value if isinstance(value, (list, tuple)) else [value]
        return frozenset(_text_key(v) for v in items)
    if spec.type in ("string", "enum", "date"):
        return _text_key(value)
    if spec.type == "boolean":
        return bool(value)
    return float(value)


def values_agree(a: Any, b: Any, spec: FieldSpec) -> bool:
    """Whether two normalised values of ``spec`` agree."""
    if a is None or b is None:
        return a is None and b is None
    if spec.type in ("number", "integer"):
        x, y = float(a), float(b)
        return math.isclose(x, y, rel_tol=spec.tolerance, abs_tol=1e-9)
    return comparison_key(a, spec) == comparison_key(b, spec)


@dataclass(frozen=True)
class FieldAgreement:
    """Whether all models agree on a field and, if they do, the agreed value (the first model's spelling)."""

    agreed: bool
    value: Any = None


def field_agreement(values_by_model: Mapping[str, Any], spec: FieldSpec) -> FieldAgreement:
    """Agreement across every model's normalised value for one field (no values: not agreed)."""
    values = list(values_by_model.values())
    if not values:
        return FieldAgreement(False)
    first = values[0]
    if all(values_agree(first, other, spec) for other in values[1:]):
        return FieldAgreement(True, first)
    return FieldAgreement(False)
