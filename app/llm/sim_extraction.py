"""The simulator's answers to field-extraction prompts: deterministic, from the record text, with real spans.

``answer(model, messages)`` returns the JSON object a model would (``{"fields": {name: {value, evidence}}}``)
or None when the prompt is not an extraction prompt (then the screening simulator answers). Rules, per field:

- age-like integers: ``57-year-old``; other numbers: the first number (with unit) after a word of the field's
  name or description, e.g. ``ejection fraction of 45%``;
- sex/gender enums: ``male``/``female``/``man``/``woman``; other enums: the first allowed value in the text;
- booleans: whether a word of the field's name occurs (``xray`` also matches ``X-ray``);
- strings: the line under a section header made of the field's name (``CHIEF COMPLAINT``), else the rest of the
  sentence after a word of the name;
- lists: the items of "history (significant) for A, B, and C", else the lines of the section named like the field;
- dates: the first date in the text.

Each simulated model also errs deterministically on a few (model, record, field) triples — it misses the value,
reads a neighbouring number, or paraphrases its evidence (which then fails verification) — so two models
sometimes disagree and the review path is exercised.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from app.llm.extraction_prompts import split_prompt

logger = logging.getLogger(__name__)

MISS_RATE = 0.05
SHIFT_RATE = 0.05
PARAPHRASE_RATE = 0.05
_STOP = {"the", "and", "for", "with", "from", "that", "this", "patient", "number", "value", "stated", "whether",
         "name", "named", "any", "date", "type", "status", "level", "record", "note", "text", "years", "in", "of",
         "or", "a", "an", "is", "as", "if", "by", "to", "at", "on", "few", "words", "main", "reason", "visit"}
_NUMBER_UNIT = re.compile(r"(\d+(?:\.\d+)?)\s*(%|percent|mg|g|kg|lb|lbs|mmhg|cm|mm|ml|bpm)?", re.IGNORECASE)
_AGE = re.compile(r"\b(\d{1,3})[- ]year[- ]old\b", re.IGNORECASE)
_SEX = re.compile(r"\b(male|female|man|woman|gentleman|lady)\b", re.IGNORECASE)
_DATE = re.compile(r"\b(\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2}|(?:January|February|March|April|May|June|July|"
                   r"August|September|October|November|December) \d{1,2}, \d{4})\b")
_HISTORY = re.compile(r"past medical history (?:significant )?(?:for|of) ([^.\n]+?)(?:,? (?:who|which|that)\b|\.|$)",
                      re.IGNORECASE | re.MULTILINE)
_SEX_VALUES = {"male": "male", "man": "male", "gentleman": "male", "female": "female", "woman": "female",
               "lady": "female"}


def _unit_hash(*parts: str) -> float:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _words(field: dict[str, Any]) -> list[str]:
    text = f"{field.get('name', '')} {field.get('description', '')}".replace("_", " ").lower()
    return [w for w in re.findall(r"[a-z][a-z-]+", text) if w not in _STOP and len(w) > 2]


def _keyword_pattern(word: str) -> re.Pattern[str]:
    # "xray" also matches "x-ray" / "x ray"
    return re.compile(r"\b" + r"[- ]?".join(re.escape(c) for c in word) + r"s?\b", re.IGNORECASE)


def _sentence_around(text: str, start: int, end: int, limit: int = 160) -> str:
    left = max(text.rfind(".", 0, start), text.rfind("\n", 0, start)) + 1
    right_candidates = [i for i in (text.find(".", end), text.find("\n", end)) if i >= 0]
    right = min(right_candidates) if right_candidates else len(text)
    return text[left:right][:limit].strip()


def _find_keyword(text: str, field: dict[str, Any]) -> re.Match[str] | None:
    phrase = str(field.get("name", "")).replace("_", " ")
    match = re.search(rf"\b{re.escape(phrase)}\b", text, re.IGNORECASE) if " " in phrase else None
    if match:
        return match
    for word in _words(field):
        match = _keyword_pattern(word).search(text)
        if match:
            return match
    return None


def _section(text: str, field: dict[str, Any]) -> tuple[str, int] | None:
    """The body under a header made of the field's name (e.g. CHIEF COMPLAINT), with its offset."""
    words = str(field.get("name", "")).upper().split("_")
    titles = [" ".join(words), "".join(w[0] for w in words if w)]
    if "history" in str(field.get("description", "")).lower():
        titles.append("PAST MEDICAL HISTORY")
    match = None
    for title in titles:
        match = re.search(rf"^{re.escape(title)}S?:?[ \t]*$\n+", text, re.MULTILINE)
        if match:
            break
    if not match:
        return None
    body_end = re.search(r"\n\s*\n[A-Z][A-Z /&]+:?[ \t]*\n", text[match.end():])
    body = text[match.end(): match.end() + body_end.start()] if body_end else text[match.end():]
    return body, match.end()


def _number(text: str, field: dict[str, Any], shift: bool) -> tuple[Any, str]:
    if "age" in str(field.get("name", "")).lower().split("_"):
        match = _AGE.search(text)
        return (int(match.group(1)) + (1 if shift else 0), match.group(0)) if match else (None, "")
    keyword = _find_keyword(text, field)
    if not keyword:
        return None, ""
    window = text[keyword.end(): keyword.end() + 80]
    numbers = list(_NUMBER_UNIT.finditer(window))
    if not numbers:
        return None, ""
    chosen = numbers[1] if shift and len(numbers) > 1 else numbers[0]
    value = f"{chosen.group(1)} {chosen.group(2)}" if chosen.group(2) else chosen.group(1)
    return value, text[keyword.start(): keyword.end() + chosen.end()]


def _enum(text: str, field: dict[str, Any]) -> tuple[Any, str]:
    allowed = [str(v) for v in field.get("allowed_values") or []]
    if {"male", "female"} <= {v.lower() for v in allowed}:
        match = _SEX.search(text)
        if match:
            return _SEX_VALUES[match.group(1).lower()], _sentence_around(text, match.start(), match.end())
        return None, ""
    best: tuple[int, str, re.Match[str]] | None = None
    for value in allowed:
        match = re.search(rf"\b{re.escape(value)}\b", text, re.IGNORECASE)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), value, match)
    if best is None:
        return None, ""
    return best[1], _sentence_around(text, best[2].start(), best[2].end())


def _boolean(text: str, field: dict[str, Any]) -> tuple[Any, str]:
    name_words = [w for w in str(field.get("name", "")).lower().split("_") if w not in _STOP and len(w) > 1]
    for word in name_words or _words(field):
        match = _keyword_pattern(word).search(text)
        if match:
            return True, _sentence_around(text, match.start(), match.end())
    return False, ""


def _string(text: str, field: dict[str, Any]) -> tuple[Any, str]:
    section = _section(text, field)
    if section:
        line = section[0].strip().splitlines()[0].strip() if section[0].strip() else ""
        return (line.rstrip(".") or None), line
    keyword = _find_keyword(text, field)
    if not keyword:
        return None, ""
    rest = _sentence_around(text, keyword.end(), keyword.end())
    return (rest or None), rest


def _list(text: str, field: dict[str, Any]) -> tuple[Any, str]:
    match = _HISTORY.search(text)
    if match:
        items = [i.strip() for i in re.split(r",\s*(?:and\s+)?|\s+and\s+", match.group(1)) if i.strip()]
        items = [re.sub(r"^(?:a|an|some)\s+", "", i) for i in items]
        return items, match.group(1)
    section = _section(text, field)
    if section:
        lines = [ln.strip("•-* ").strip() for ln in section[0].splitlines() if ln.strip()]
        return lines[:10] or None, section[0].strip().splitlines()[0] if lines else ""
    return None, ""


def _date(text: str, field: dict[str, Any]) -> tuple[Any, str]:
    match = _DATE.search(text)
    return (match.group(1), match.group(1)) if match else (None, "")


_BY_TYPE: dict[str, Callable[[str, dict[str, Any]], tuple[Any, str]]] = {
    "enum": _enum, "boolean": _boolean, "string": _string, "list": _list, "date": _date}


def extract(model: str, fields: Sequence[dict[str, Any]], text: str) -> dict[str, Any]:
    """The simulated model's extraction of ``fields`` from ``text``."""
    answer: dict[str, Any] = {}
    for field in fields:
        draw = _unit_hash("dc", model, str(field.get("name")), text[:2000])
        shift = MISS_RATE <= draw < MISS_RATE + SHIFT_RATE
        kind = str(field.get("type"))
        if kind in ("integer", "number"):
            value, evidence = _number(text, field, shift)
        else:
            value, evidence = _BY_TYPE.get(kind, _string)(text, field)
        if draw < MISS_RATE:
            value, evidence = None, ""
        elif evidence and MISS_RATE + SHIFT_RATE <= draw < MISS_RATE + SHIFT_RATE + PARAPHRASE_RATE:
            evidence = "the record says: " + " ".join(reversed(evidence.split()))
        answer[str(field.get("name"))] = {"value": value, "evidence": evidence}
    return {"fields": answer}


def answer(model: str, messages: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The answer to an extraction prompt, or None when ``messages`` is not one."""
    parsed = split_prompt(messages)
    if parsed is None:
        return None
    fields, text = parsed
    return extract(model, fields, text)
