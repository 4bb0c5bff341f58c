"""The field-extraction prompt (``dc_extraction``): fields in, ``{fields: {name: {value, evidence}}}`` out.

``EXTRACTION_PROMPT_VERSION`` goes into every extraction cache key and each task's snapshot: change it whenever
the wording changes. The record text is the ONLY patient data in the request; it is sent to the configured
model providers and nowhere else (never logged).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from app.llm.prompts import InvalidOutput

if TYPE_CHECKING:
    from app.services.extraction import FieldSpec

logger = logging.getLogger(__name__)

EXTRACTION_PROMPT_VERSION = "dc-extract-2026-12-v1"
EXTRACTION_MARKER = "litscreen field extraction"
RECORD_START = "<<<RECORD"
RECORD_END = "RECORD>>>"
EXTRACTION_PARAMS: dict[str, Any] = {"temperature": 0, "max_tokens": 1500, "response_format": {"type": "json_object"}}

SYSTEM_PROMPT = f"""You are a careful clinical data abstractor ({EXTRACTION_MARKER}, {EXTRACTION_PROMPT_VERSION}).
Read ONE clinical record and extract the requested fields. Rules:
- Use only what the record states; never guess. If a field is not stated, give "value": null and "evidence": "".
- "evidence" is a short verbatim quote copied exactly from the record that supports the value.
- Types: string (short text), number / integer (a number, in the field's unit if one is given), date (YYYY-MM-DD),
  boolean (true/false), enum (exactly one of the allowed values), list (a JSON array of short strings).
Answer with strict JSON only, no prose:
{{"fields": {{"<field name>": {{"value": <value or null>, "evidence": "<quote or empty>"}}, ...}}}}"""


def record_text(row: dict[str, Any], text_columns: Sequence[str]) -> str:
    """The text the models read: the text columns' values (headed by the column name when there are several)."""
    parts = []
    for column in text_columns:
        value = row.get(column)
        if value is None or str(value).strip() == "":
            continue
        parts.append(str(value) if len(text_columns) == 1 else f"{column}:\n{value}")
    return "\n\n".join(parts)


def field_lines(fields: Sequence[FieldSpec]) -> str:
    """The fields as a JSON list in the prompt."""
    described = []
    for spec in fields:
        entry: dict[str, Any] = {"name": spec.name, "type": spec.type, "description": spec.description}
        if spec.enum:
            entry["allowed_values"] = list(spec.enum)
        if spec.unit:
            entry["unit"] = spec.unit
        described.append(entry)
    return json.dumps(described, ensure_ascii=False)


def build_extraction_messages(fields: Sequence[FieldSpec], text: str) -> list[dict[str, str]]:
    """The chat messages for one record."""
    user = f"Fields to extract (JSON):\n{field_lines(fields)}\n\nRecord:\n{RECORD_START}\n{text}\n{RECORD_END}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def extraction_repair_messages(messages: list[dict[str, str]], bad_output: str, problem: str) -> list[dict[str, str]]:
    """One follow-up turn asking for valid JSON after ``bad_output``."""
    return [*messages, {"role": "assistant", "content": bad_output[:4000]},
            {"role": "user", "content": f"That answer was not valid ({problem}). Reply again with the strict JSON "
                                        "object only, with every requested field."}]


def parse_extraction_answer(content: str, fields: Sequence[FieldSpec]) -> dict[str, dict[str, Any]]:
    """``{name: {"value": raw value, "evidence": str}}`` for every field; InvalidOutput when unusable.

    A missing field is an absent value (null); a bare value instead of ``{value, evidence}`` is accepted with
    empty evidence. Values are NOT normalised here (``normalise_value`` does that, per field)."""
    text = (content or "").strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(text)
    except ValueError:
        raise InvalidOutput("the answer is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidOutput("the answer is not a JSON object")
    found = data.get("fields", data)
    if not isinstance(found, dict):
        raise InvalidOutput("'fields' is not an object")
    answer: dict[str, dict[str, Any]] = {}
    for spec in fields:
        item = found.get(spec.name)
        if isinstance(item, dict):
            evidence = item.get("evidence")
            answer[spec.name] = {"value": item.get("value"),
                                 "evidence": evidence if isinstance(evidence, str) else ""}
        else:
            answer[spec.name] = {"value": item, "evidence": ""}
    return answer


def split_prompt(messages: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], str] | None:
    """(field definitions, record text) of an extraction prompt, or None if ``messages`` is not one (the
    simulator's dispatch test)."""
    system = next((str(m.get("content", "")) for m in messages if m.get("role") == "system"), "")
    if EXTRACTION_MARKER not in system:
        return None
    user = next((str(m.get("content", "")) for m in messages if m.get("role") == "user"), "")
    start, end = user.find(RECORD_START), user.rfind(RECORD_END)
    head = user[:start]
    try:
        fields = json.loads(head[head.index("["):head.rindex("]") + 1])
    except ValueError:
        return None
    return fields, user[start + len(RECORD_START) + 1:end - 1] if start >= 0 and end > start else ""
