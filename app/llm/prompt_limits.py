"""What one record may put into a prompt: title and abstract together at most ``PROMPT_MAX_CHARS_PER_RECORD``
characters (the title first, then as much of the abstract as fits). A cut is reported as a warning, kept on every
model decision of the record and shown in its result (``warnings``)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

DEFAULT_PROMPT_MAX_CHARS_PER_RECORD = 20_000


def cap_record_text(title: str, abstract: str | None, max_chars: int) -> tuple[str, str | None, str | None]:
    """(title, abstract, warning): the text cut to ``max_chars`` in total; warning None when nothing was cut."""
    abstract = abstract or None
    total = len(title) + len(abstract or "")
    if max_chars <= 0 or total <= max_chars:
        return title, abstract, None
    kept_title = title[:max_chars]
    room = max_chars - len(kept_title)
    kept_abstract = (abstract or "")[:room] or None
    warning = (f"prompt truncated: title and abstract hold {total} characters, the models read the first "
               f"{max_chars} (PROMPT_MAX_CHARS_PER_RECORD)")
    return kept_title, kept_abstract, warning
