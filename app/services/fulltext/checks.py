"""Full-text checks on top of the shared extraction primitives: which page a quote is on; do two values agree.

``locate_quote`` compares with normalised whitespace, dashes and line-break hyphenation (so ``treat-\\nment``
in a PDF's text matches a quote saying ``treatment``), page by page and then across page breaks.
``values_agree`` compares by field kind: ``category`` (study designs by their canonical name), ``counts`` (the
set of numbers), ``duration`` (in days) and ``text`` (content-word overlap).
"""

from __future__ import annotations

import re
import unicodedata

from app.llm.fulltext_prompts import design_of

_DASHES = re.compile(r"[\u2010\u2011\u2012\u2013\u2014\u2212\u00ad]")
_LINEBREAK_HYPHEN = re.compile(r"-\s+")   # "treat-\nment", or "treat- ment" once whitespace is collapsed
_NON_WORD = re.compile(r"[^\w%.<>=]+")
_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DURATION = re.compile(r"(\d+(?:\.\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                       r"eighteen|twenty-four)\s*-?\s*(day|week|month|year)s?", re.IGNORECASE)
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "eighteen": 18, "twenty-four": 24}
_DAYS = {"day": 1, "week": 7, "month": 30.44, "year": 365.25}
STOPWORDS = frozenset("a an and are as at be by for from in into is of on or the this that to was were with "
                      "we our their its were has have had not no".split())
TEXT_AGREEMENT = 0.5

def normalise_for_matching(text: str) -> str:
    """Lower-cased text with unified dashes, line-break hyphenation undone, punctuation and spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).replace("\u00ad", "")
    text = _DASHES.sub("-", text)
    text = _LINEBREAK_HYPHEN.sub("", text)
    text = text.replace("-", "")
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def locate_quote(quote: str, page_texts: list[str], hint: int | None = None) -> int | None:
    """The 1-based page holding ``quote`` (the hinted page first), or None when the text does not contain it."""
    needle = normalise_for_matching(quote)
    if len(needle) < 8:
        return None   # too short to mean anything as evidence
    order = list(range(1, len(page_texts) + 1))
    if hint and 1 <= hint <= len(page_texts):
        order.remove(hint)
        order.insert(0, hint)
    normalised = {page: normalise_for_matching(page_texts[page - 1]) for page in order}
    for page in order:
        if needle in normalised[page]:
            return page
    # a quote running over a page break: find it in the joined text, report the page it starts on
    joined = ""
    starts: list[tuple[int, int]] = []
    for page in range(1, len(page_texts) + 1):
        starts.append((len(joined), page))
        joined += normalised[page] + " "
    at = joined.find(needle)
    if at < 0:
        return None
    return max(page for start, page in starts if start <= at)


def _days(value: str) -> float | None:
    match = _DURATION.search(value)
    if not match:
        return None
    amount = match.group(1).lower()
    number = _NUMBER_WORDS.get(amount) or float(amount)
    return float(number) * _DAYS[match.group(2).lower()]


def _content_words(value: str) -> set[str]:
    return {w for w in _WORD.findall(value.lower()) if w not in STOPWORDS}


def values_agree(kind: str, first: str | None, second: str | None) -> bool:
    """Whether two models' values of a field of ``kind`` say the same thing (both null agree)."""
    if first is None or second is None:
        return first is None and second is None
    if kind == "category":
        return design_of(first) == design_of(second)
    if kind == "counts":
        a, b = set(_NUMBER.findall(first)), set(_NUMBER.findall(second))
        if a or b:
            return a == b
    if kind == "duration":
        a_days, b_days = _days(first), _days(second)
        if a_days is not None and b_days is not None:
            return abs(a_days - b_days) <= 0.05 * max(a_days, b_days)
    a_words, b_words = _content_words(first), _content_words(second)
    if not a_words or not b_words:
        return normalise_for_matching(first) == normalise_for_matching(second)
    return len(a_words & b_words) / len(a_words | b_words) >= TEXT_AGREEMENT
