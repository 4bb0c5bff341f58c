"""Shared extraction primitives: field specs, value normalisation, evidence verification, agreement.

Used by every task kind that extracts structured fields from text (``dc_extraction`` on clinical records,
``fulltext`` on PDFs). The public API is small and stable; import it from this package:

- :class:`FieldSpec` — one field of an extraction schema (``name``, ``type``, ``enum``, ``unit``, ``required``);
  :data:`FIELD_TYPES` lists the types.
- :func:`normalise_value` — a model's raw value to the field's canonical form (ISO dates, numbers converted to
  the field's unit, enums in their declared spelling, lists de-duplicated); raises :class:`NormalisationError`.
- :func:`verify_evidence` / :func:`verify_evidence_in_pages` — does a quote occur in the source text (ignoring
  whitespace, case, hyphenation at line breaks, typographic quotes and dashes)? Returns an
  :class:`EvidenceMatch` with the character span (and page) in the ORIGINAL text.
- :func:`values_agree`, :func:`field_agreement` — do the models' normalised values agree, by type (string
  normalised, number within a tolerance, ISO date, enum case-folded, list as a set)?
- :func:`comparison_key` — the hashable form two values are compared by (also used against gold labels).

Messages of :class:`NormalisationError` never quote the value (it may be record text).
"""

from app.services.extraction.agreement import FieldAgreement, comparison_key, field_agreement, values_agree
from app.services.extraction.evidence import EvidenceMatch, verify_evidence, verify_evidence_in_pages
from app.services.extraction.fields import FIELD_TYPES, FieldSpec
from app.services.extraction.normalise import NormalisationError, normalise_value

__all__ = [
    "FIELD_TYPES",
    "EvidenceMatch",
    "FieldAgreement",
    "FieldSpec",
    "NormalisationError",
    "comparison_key",
    "field_agreement",
    "normalise_value",
    "values_agree",
    "verify_evidence",
    "verify_evidence_in_pages",
]
