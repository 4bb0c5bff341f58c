"""Lexical relevance of a record against PICOS criteria: the simulator's deterministic "judgement".

The score is a weighted share of PICOS elements whose (crudely stemmed) terms occur in the record's title and
abstract, minus a penalty for exclusion-criteria terms. Nothing here calls a model; it only has to be
plausible and deterministic so the demo and the tests get stable, sensible decisions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

WORD = re.compile(r"[a-z][a-z\-]+")

STOPWORDS = frozenset(
    """a about above after again against all also among an and any are as at be been before being between both
    but by can could did do does during each either for from had has have how if in into is it its may more
    most no nor not of on or other our out over own same should so such than that the their them then there
    these they this those through to too under until up very was we were what when where which while who
    whom why will with within would you your usual care study studies such like e.g eg etc versus vs use used
    using based including include includes effect effects compared comparison""".split()
)

# Weights of the PICOS elements in the score; C (comparison) is rarely stated in abstracts, so it counts little.
ELEMENT_WEIGHTS = {"P": 0.30, "I": 0.35, "C": 0.0, "O": 0.20, "S": 0.15}
# How many distinct terms of an element must match for the element to count as fully present.
TERMS_FOR_FULL_MATCH = 3

# A small thesaurus standing in for a model's background knowledge: a criterion stem also matches these stems.
RELATED_TERMS: dict[str, tuple[str, ...]] = {
    "nudg": ("remind", "alert", "prompt", "default", "feedba", "checkl", "comput", "automa", "audit", "peer",
              "letter", "decis", "order", "chart", "electr", "choice", "incent", "framin", "salien"),
    "choice": ("default", "option", "order", "menu"),
    "remind": ("alert", "prompt", "notice", "messag"),
    "profes": ("physic", "doctor", "nurse", "clinic", "pharma", "practi", "reside", "staff", "provid", "prescr",
               "genera", "surgeo", "worker"),
    "health": ("hospit", "clinic", "medica", "primar", "inpati", "outpat"),
    "eviden": ("guidel", "adhere", "compli", "approp", "recomm", "qualit", "practi"),
    "guidel": ("recomm", "adhere", "compli", "approp", "protoc"),
    "practi": ("prescr", "order", "test", "screen", "manage", "compli"),
    "trial": ("random", "contro", "clust", "interv", "prospe", "assign", "allocat"),
    "random": ("trial", "clust", "assign", "allocat"),
}

_SUFFIXES = ("ational", "ations", "ation", "ments", "ment", "ness", "ings", "ing", "ions", "ion", "ies",
             "ers", "er", "ed", "es", "s", "al", "ly", "e")


def stem(word: str) -> str:
    """A crude suffix-stripping stem, truncated to 6 characters (enough for lexical matching)."""
    word = word.strip("-")
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:6]


def terms(text: str | None) -> set[str]:
    """Distinct stemmed content words of ``text``."""
    if not text:
        return set()
    words: list[str] = []
    for token in WORD.findall(text.lower()):
        words.extend(part for part in token.split("-") if part)
    return {stem(w) for w in words if len(w) >= 3 and w not in STOPWORDS}


@dataclass
class Relevance:
    """The score (0..1) and which PICOS elements matched."""

    score: float
    elements: dict[str, float] = field(default_factory=dict)
    matched_terms: dict[str, list[str]] = field(default_factory=dict)
    exclusion_hits: list[str] = field(default_factory=list)


def expand(criterion_terms: set[str]) -> set[str]:
    """Criterion stems plus their related stems from ``RELATED_TERMS``."""
    expanded = set(criterion_terms)
    for term in criterion_terms:
        expanded.update(RELATED_TERMS.get(term, ()))
    return expanded


def relevance(picos: dict[str, str], inclusion: str | None, exclusion: str | None, title: str,
              abstract: str | None) -> Relevance:
    """Score a record (title weighted double) against PICOS and inclusion / exclusion criteria."""
    title_terms = terms(title)
    record_terms = title_terms | terms(abstract)
    elements: dict[str, float] = {}
    matched: dict[str, list[str]] = {}
    score = 0.0
    weight_total = 0.0
    for element, weight in ELEMENT_WEIGHTS.items():
        element_terms = expand(terms(picos.get(element)))
        if not element_terms or weight == 0:
            continue
        hits = element_terms & record_terms
        strength = min(1.0, (len(hits) + 0.5 * len(hits & title_terms)) / TERMS_FOR_FULL_MATCH)
        elements[element] = round(strength, 3)
        matched[element] = sorted(hits)
        score += weight * strength
        weight_total += weight
    inclusion_terms = terms(inclusion)
    if inclusion_terms:
        hits = inclusion_terms & record_terms
        strength = min(1.0, len(hits) / TERMS_FOR_FULL_MATCH)
        score += 0.2 * strength
        weight_total += 0.2
    normalised = score / weight_total if weight_total else 0.0
    exclusion_hits = sorted(terms(exclusion) & title_terms)
    if exclusion_hits:
        normalised -= 0.10 * len(exclusion_hits)
    return Relevance(max(0.0, min(1.0, normalised)), elements, matched, exclusion_hits)
