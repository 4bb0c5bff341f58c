"""Marking text for a reviewer: PICOS terms in an abstract, a field's evidence in its source text (HTML-safe)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from markupsafe import Markup, escape

STOP_WORDS = frozenset("""
about after also among and another any are aimed based before between both but can care changes controlled
each either from have into making measure more must none not only other over same such than that their them
then there these they this those through under usual were what when where which while with within without
""".split())
MIN_TERM_CHARS = 4
EVIDENCE_CONTEXT_CHARS = 300


def picos_terms(picos: Mapping[str, str] | None) -> list[str]:
    """Content words of the PICOS text (longest first), the terms a reviewer looks for in an abstract."""
    words: set[str] = set()
    for value in (picos or {}).values():
        for word in re.findall(r"[A-Za-z][A-Za-z-]+", value or ""):
            lowered = word.lower().strip("-")
            if len(lowered) >= MIN_TERM_CHARS and lowered not in STOP_WORDS:
                words.add(lowered)
    return sorted(words, key=lambda w: (-len(w), w))


def _stem(term: str) -> str:
    """A crude stem so 'nudges' also marks 'nudge' and 'prescribing' marks 'prescribe'."""
    for suffix in ("ing", "es", "s", "ed"):
        if term.endswith(suffix) and len(term) - len(suffix) >= MIN_TERM_CHARS:
            return term[: -len(suffix)]
    return term


def highlight_terms(text: str | None, terms: Iterable[str]) -> Markup:
    """``text`` escaped, with every word starting with one of ``terms`` (stemmed) wrapped in <mark>."""
    if not text:
        return Markup("")
    stems = sorted({_stem(term) for term in terms}, key=len, reverse=True)
    if not stems:
        return escape(text)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(stem) for stem in stems) + r")[A-Za-z-]*", re.IGNORECASE)
    return _mark_spans(text, [(m.start(), m.end()) for m in pattern.finditer(text)])


def _mark_spans(text: str, spans: list[tuple[int, int]]) -> Markup:
    parts: list[str] = []
    position = 0
    for start, end in spans:
        parts.append(str(escape(text[position:start])))
        parts.append(f"<mark>{escape(text[start:end])}</mark>")
        position = end
    parts.append(str(escape(text[position:])))
    return Markup("".join(parts))


def _find(haystack: str, needle: str) -> tuple[int, int] | None:
    """Where ``needle`` occurs in ``haystack``, ignoring case and runs of whitespace."""
    words = needle.split()
    if not words:
        return None
    pattern = re.compile(r"\s+".join(re.escape(word) for word in words), re.IGNORECASE)
    found = pattern.search(haystack)
    return (found.start(), found.end()) if found else None


def evidence_in_context(sources: Mapping[int | str, str], evidence: str | None,
                        page: int | None = None) -> tuple[int | str, Markup] | None:
    """(page or column, excerpt) with the evidence marked in ``EVIDENCE_CONTEXT_CHARS`` of text either side;
    the given ``page`` is searched first. None when the evidence is not in the sources."""
    if not evidence or not sources:
        return None
    keys = list(sources)
    if page is not None and page in sources:
        keys.remove(page)
        keys.insert(0, page)
    for key in keys:
        text = sources[key]
        span = _find(text, evidence)
        if span is None:
            continue
        start = max(0, span[0] - EVIDENCE_CONTEXT_CHARS)
        end = min(len(text), span[1] + EVIDENCE_CONTEXT_CHARS)
        excerpt = _mark_spans(text[start:end], [(span[0] - start, span[1] - start)])
        prefix = Markup("… ") if start > 0 else Markup("")
        suffix = Markup(" …") if end < len(text) else Markup("")
        return key, prefix + excerpt + suffix
    return None
