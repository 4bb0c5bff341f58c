"""A document's text for a prompt: pages marked ``[page N]``, and section-aware parts for long documents.

A document that fits the model's budget goes whole. A longer one is cut at section headings (Abstract, Methods,
Results, ...) into parts that each fit: whole sections are packed together in document order, and a section
longer than the budget is cut at paragraph (else line, else character) boundaries. Nothing is dropped: the parts
together hold every character of the document, each piece under its page marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CHARS_PER_TOKEN = 4
_HEADINGS = (
    "abstract", "summary", "background", "introduction", "objectives?", "aims?", "methods?", "materials and methods",
    "patients and methods", "methodology", "study design", "results?", "findings", "discussion", "limitations",
    "conclusions?", "interpretation", "references", "bibliography", "acknowledge?ments?", "funding",
    "competing interests", "conflicts? of interest", "declarations?", "authors'? contributions",
    "supplementary material", "appendix",
)
HEADING = re.compile(r"^\s*(?:\d{1,2}(?:\.\d{1,2})*\.?\s+)?(" + "|".join(_HEADINGS) + r")\s*:?\s*$", re.IGNORECASE)


def estimate_tokens(text: str) -> int:
    """Rough token count (4 characters a token), the same estimate the simulator reports."""
    return max(1, len(text) // CHARS_PER_TOKEN)


def page_marker(page: int) -> str:
    """The marker a page's text follows in a prompt."""
    return f"[page {page}]"


def render_pages(page_texts: list[str]) -> str:
    """The whole document, each page under its marker."""
    return "\n".join(f"{page_marker(n)}\n{text}" for n, text in enumerate(page_texts, start=1))


@dataclass
class Section:
    """A run of the document under one heading: ``(page, text)`` pieces in order."""

    heading: str
    pieces: list[tuple[int, str]] = field(default_factory=list)

    @property
    def chars(self) -> int:
        """Characters of text in the section."""
        return sum(len(text) + 1 for _page, text in self.pieces)


def split_sections(page_texts: list[str]) -> list[Section]:
    """The document's sections in order (text before the first heading is the ``front matter``)."""
    sections = [Section("front matter")]
    for page, text in enumerate(page_texts, start=1):
        buffer: list[str] = []
        for line in text.split("\n"):
            match = HEADING.match(line) if len(line) < 60 else None
            if match:
                if buffer:
                    sections[-1].pieces.append((page, "\n".join(buffer)))
                    buffer = []
                sections.append(Section(match.group(1).strip().title()))
            buffer.append(line)
        if buffer:
            sections[-1].pieces.append((page, "\n".join(buffer)))
    return [s for s in sections if s.pieces]


@dataclass
class DocumentPart:
    """Text for one prompt: marked pieces of consecutive sections."""

    sections: list[str] = field(default_factory=list)
    pieces: list[tuple[int, str]] = field(default_factory=list)

    @property
    def chars(self) -> int:
        """Characters of the piece texts (markers not counted)."""
        return sum(len(text) + 1 for _page, text in self.pieces)

    def text(self) -> str:
        """The part's text with a page marker wherever the page changes."""
        lines: list[str] = []
        current = None
        for page, text in self.pieces:
            if page != current:
                lines.append(page_marker(page))
                current = page
            lines.append(text)
        return "\n".join(lines)


def _cut(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at blank lines, else lines, else anywhere."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = window.rfind("\n\n")
        if cut < limit // 3:
            cut = window.rfind("\n")
        if cut < limit // 3:
            cut = window.rfind(". ") + 1 if window.rfind(". ") > limit // 3 else limit
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest:
        pieces.append(rest)
    return pieces


def plan_parts(page_texts: list[str], budget_tokens: int) -> list[DocumentPart]:
    """The document as one part when it fits ``budget_tokens``, else section-aware parts that each fit."""
    budget = max(200, budget_tokens) * CHARS_PER_TOKEN
    marker_allowance = 16   # characters a page marker may add per piece
    whole = DocumentPart(["whole document"], [(n, t) for n, t in enumerate(page_texts, start=1)])
    if len(render_pages(page_texts)) <= budget:
        return [whole]
    parts: list[DocumentPart] = [DocumentPart()]
    for section in split_sections(page_texts):
        for page, text in section.pieces:
            for piece in _cut(text, budget - marker_allowance):
                current = parts[-1]
                if current.pieces and current.chars + len(piece) + 1 + marker_allowance * 2 > budget:
                    current = DocumentPart()
                    parts.append(current)
                if not current.sections or current.sections[-1] != section.heading:
                    current.sections.append(section.heading)
                current.pieces.append((page, piece))
    return [p for p in parts if p.pieces]
