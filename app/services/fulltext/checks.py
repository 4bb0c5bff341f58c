"""Full-text checks on top of the shared extraction primitives (``app/services/extraction``).

``locate_quote``: the page a quote is on (the model's page first), with the primitives' normalisation of
whitespace, case, dashes and line-break hyphenation (``treat-\\nment`` matches ``treatment``).
``values_agree``: do two models' values of a field say the same, by the field's kind — ``category`` (study designs
by their canonical name, as an enum), ``counts`` (the set of numbers, as a list), ``duration`` (converted to days,
within 5 %), ``text`` (free text: equal after normalisation, or sharing at least half their content words).
"""

from __future__ import annotations

import re

from app.llm.fulltext_prompts import DESIGNS, design_of
from app.services.extraction import (
    FieldSpec,
    NormalisationError,
    normalise_value,
    verify_evidence,
    verify_evidence_in_pages,
)
from app.services.extraction import values_agree as typed_values_agree

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_WORD = re.compile(r"[a-z0-9]+")
_NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                 "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "eighteen": "18"}
STOPWORDS = frozenset(["a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "of",
                       "on", "or", "the", "this", "that", "to", "was", "were", "with", "we", "our", "their", "its",
                       "has", "have", "had", "not", "no"])
TEXT_AGREEMENT = 0.5
MIN_QUOTE_CHARS = 8

DESIGN_SPEC = FieldSpec("study_design", "enum", enum=tuple(name for name, _markers in DESIGNS) + ("other",))
COUNTS_SPEC = FieldSpec("participants", "list")
DURATION_SPEC = FieldSpec("follow_up_duration", "number", unit="day", tolerance=0.05)
TEXT_SPEC = FieldSpec("text", "string")


def locate_quote(quote: str, page_texts: list[str], hint: int | None = None) -> int | None:
    """The 1-based page holding ``quote`` (the hinted page first), or None when the text does not contain it."""
    if len(quote.strip()) < MIN_QUOTE_CHARS:
        return None   # too short to mean anything as evidence
    if hint and 1 <= hint <= len(page_texts) and verify_evidence(quote, page_texts[hint - 1]).verified:
        return hint
    match = verify_evidence_in_pages(quote, page_texts)
    return match.page if match.verified else None


def _design(value: str) -> str:
    canonical = design_of(value)
    return canonical if canonical in DESIGN_SPEC.enum else "other"   # type: ignore[operator]


def _days(value: str) -> float | None:
    text = value.lower()
    for word, digits in _NUMBER_WORDS.items():
        text = re.sub(rf"\b{word}\b", digits, text)
    match = re.search(r"\d+(?:\.\d+)?\s*-?\s*(?:days?|weeks?|months?|years?)\b", text)
    if not match:
        return None
    try:
        return float(normalise_value(match.group(0).replace("-", " "), DURATION_SPEC))
    except NormalisationError:
        return None


def _content_words(value: str) -> set[str]:
    return {w for w in _WORD.findall(value.lower()) if w not in STOPWORDS}


def values_agree(kind: str, first: str | None, second: str | None) -> bool:
    """Whether two models' values of a field of ``kind`` say the same thing (both null agree)."""
    if first is None or second is None:
        return first is None and second is None
    if kind == "category":
        return typed_values_agree(_design(first), _design(second), DESIGN_SPEC)
    if kind == "counts":
        a, b = _NUMBER.findall(first), _NUMBER.findall(second)
        if a or b:
            return typed_values_agree(a, b, COUNTS_SPEC)
    if kind == "duration":
        a_days, b_days = _days(first), _days(second)
        if a_days is not None and b_days is not None:
            return typed_values_agree(a_days, b_days, DURATION_SPEC)
    if typed_values_agree(first, second, TEXT_SPEC):
        return True
    a_words, b_words = _content_words(first), _content_words(second)
    return bool(a_words and b_words) and len(a_words & b_words) / len(a_words | b_words) >= TEXT_AGREEMENT
