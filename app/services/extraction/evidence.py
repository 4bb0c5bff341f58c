"""Evidence verification: does a model's quote really occur in the source text?

Both sides are normalised the same way before matching — Unicode NFKC, case folding, typographic quotes and
dashes to ASCII, soft hyphens removed, a word hyphenated across a line break joined (``treat-\\nment`` ->
``treatment``), every run of whitespace to one space — and the match is mapped back to character offsets in
the original text. A quote with ``...`` / ``…`` in it matches when its parts occur in order.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_CHAR_MAP = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u0060\u00b4", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"),
}
_DROP = {"\u00ad", "\u200b", "\u200c", "\u200d", "\ufeff"}
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.+|\u2026)\s*")
_TRIM = " \t\r\n\"'.,;:"


@dataclass(frozen=True)
class EvidenceMatch:
    """The outcome of a check: ``verified``, and where the quote is in the original text (``start``/``end``
    character offsets, ``end`` exclusive; ``page`` 1-based when pages were given)."""

    verified: bool
    start: int | None = None
    end: int | None = None
    page: int | None = None


def normalise_with_offsets(text: str) -> tuple[str, list[int]]:
    """The normalised text and, for each of its characters, the offset of the original character it came from."""
    out: list[str] = []
    offsets: list[int] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _DROP:
            i += 1
            continue
        if ch == "-" or _CHAR_MAP.get(ch) == "-":
            # a hyphen at a line break inside a word: drop it and the break
            j = i + 1
            while j < n and text[j] in " \t\r":
                j += 1
            if j < n and text[j] == "\n" and out and out[-1].isalnum():
                k = j + 1
                while k < n and text[k].isspace():
                    k += 1
                if k < n and text[k].isalnum():
                    i = k
                    continue
        if ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                offsets.append(i)
            i += 1
            continue
        mapped = _CHAR_MAP.get(ch)
        piece = mapped if mapped is not None else unicodedata.normalize("NFKC", ch).casefold()
        for c in piece:
            out.append(_CHAR_MAP.get(c, c))
            offsets.append(i)
        i += 1
    if out and out[-1] == " ":
        out.pop()
        offsets.pop()
    return "".join(out), offsets


def _normalise_quote(quote: str) -> list[str]:
    parts = [p.strip(_TRIM) for p in _ELLIPSIS.split(quote)]
    return [normalise_with_offsets(p)[0] for p in parts if any(c.isalnum() for c in p)]


def verify_evidence(quote: str | None, text: str) -> EvidenceMatch:
    """Whether ``quote`` occurs in ``text`` after normalisation, with its span in the original ``text``.

    An empty or missing quote, or one without a letter or digit, is not verified. Surrounding quotes and
    punctuation on the quote are ignored.
    """
    if not quote or not isinstance(quote, str) or not text:
        return EvidenceMatch(False)
    parts = _normalise_quote(quote)
    if not parts:
        return EvidenceMatch(False)
    haystack, offsets = normalise_with_offsets(text)
    match = _find_parts(parts, haystack, offsets)
    if match.verified:
        return match
    # "follow-\nup" joins to "followup": also try with every hyphen dropped on both sides
    kept = [i for i, c in enumerate(haystack) if c != "-"]
    return _find_parts([p.replace("-", "") for p in parts], "".join(haystack[i] for i in kept),
                       [offsets[i] for i in kept])


def _find_parts(parts: list[str], haystack: str, offsets: list[int]) -> EvidenceMatch:
    pos = 0
    first_start: int | None = None
    last_end = 0
    for part in parts:
        if not part:
            return EvidenceMatch(False)
        found = haystack.find(part, pos)
        if found < 0:
            return EvidenceMatch(False)
        if first_start is None:
            first_start = found
        last_end = found + len(part)
        pos = last_end
    assert first_start is not None
    return EvidenceMatch(True, offsets[first_start], offsets[last_end - 1] + 1)


def verify_evidence_in_pages(quote: str | None, pages: Sequence[str]) -> EvidenceMatch:
    """As :func:`verify_evidence` over a document given as pages; the first page holding the quote wins
    (offsets are within that page). A quote spanning a page break is looked for in the joined text and
    reported on the page it starts on."""
    for number, page in enumerate(pages, start=1):
        match = verify_evidence(quote, page)
        if match.verified:
            return EvidenceMatch(True, match.start, match.end, number)
    joined = "\n".join(pages)
    match = verify_evidence(quote, joined)
    if not match.verified or match.start is None:
        return EvidenceMatch(False)
    base = 0
    for number, page in enumerate(pages, start=1):
        if match.start < base + len(page):
            return EvidenceMatch(True, match.start - base, (match.end or 0) - base, number)
        base += len(page) + 1
    return EvidenceMatch(False)
