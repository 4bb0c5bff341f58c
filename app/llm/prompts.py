"""The title/abstract screening prompt, its strict JSON answer format, validation and the one repair prompt.

``PROMPT_VERSION`` goes into every LLM cache key and every task's model snapshot: change it whenever the
wording or the answer format changes, so old cached answers are not reused for a different question.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

PROMPT_VERSION = "asl-ta-2026-11-v1"
DECISIONS = ("include", "exclude", "uncertain")
PICOS_ELEMENTS = ("P", "I", "C", "O", "S")
PICOS_LABELS = {"P": "population", "I": "intervention", "C": "comparison", "O": "outcome", "S": "study design"}
REQUEST_PARAMS: dict[str, Any] = {"temperature": 0, "max_tokens": 600, "response_format": {"type": "json_object"}}

SYSTEM_PROMPT = (
    "You screen bibliographic records for a systematic review at the title/abstract stage. Judge the record "
    "only against the review's PICOS and criteria. Answer with one JSON object and nothing else, exactly: "
    '{"decision": "include" | "exclude" | "uncertain", "reason": "<one or two sentences>", '
    '"confidence": <number from 0 to 1>, "picos": {"P": "<judgement>", "I": "<judgement>", '
    '"C": "<judgement>", "O": "<judgement>", "S": "<judgement>"}}. '
    "Include when the record may meet the criteria (screening favours recall); exclude only when it clearly "
    "does not; say uncertain when the abstract does not allow a judgement."
)

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL | re.IGNORECASE)


class InvalidOutput(ValueError):
    """The model's answer is not the JSON object the prompt asks for; the message says why."""


@dataclass
class ScreeningAnswer:
    """A validated answer."""

    decision: str
    reason: str
    confidence: float
    picos: dict[str, str] = field(default_factory=dict)


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def build_messages(picos: dict[str, str], inclusion: str | None, exclusion: str | None, title: str,
                   abstract: str | None) -> list[dict[str, str]]:
    """System + user messages for one record. The record comes last, after ``Title:`` / ``Abstract:``."""
    lines = ["Review criteria (PICOS):"]
    for element in PICOS_ELEMENTS:
        value = _one_line(picos.get(element))
        lines.append(f"{element} ({PICOS_LABELS[element]}): {value or 'not specified'}")
    lines.append(f"Inclusion criteria: {_one_line(inclusion) or 'none given'}")
    lines.append(f"Exclusion criteria: {_one_line(exclusion) or 'none given'}")
    lines.append("")
    lines.append("Record to screen:")
    lines.append(f"Title: {_one_line(title)}")
    lines.append(f"Abstract: {(abstract or '').strip() or 'no abstract available'}")
    lines.append("")
    lines.append("Reply with the JSON object only.")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}]


def repair_messages(messages: list[dict[str, str]], bad_output: str, problem: str) -> list[dict[str, str]]:
    """The one repair attempt: the conversation, the invalid answer, and a request for valid JSON."""
    return [
        *messages,
        {"role": "assistant", "content": bad_output[:4000]},
        {"role": "user", "content": (
            f"Your answer was not valid: {problem}. Reply again with only the JSON object in the required "
            'format: {"decision": "include" | "exclude" | "uncertain", "reason": "...", "confidence": 0.0-1.0, '
            '"picos": {"P": "...", "I": "...", "C": "...", "O": "...", "S": "..."}}'
        )},
    ]


def json_object(content: str) -> dict[str, Any]:
    """The JSON object of a model's answer (a ```json fence allowed); InvalidOutput when it is not one."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidOutput(f"not JSON ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise InvalidOutput("the answer is not a JSON object")
    return data


def parse_answer(content: str) -> ScreeningAnswer:
    """Validate a model's answer; InvalidOutput says what is wrong."""
    data = json_object(content)
    decision = data.get("decision")
    if not isinstance(decision, str) or decision.strip().lower() not in DECISIONS:
        raise InvalidOutput(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidOutput("reason must be a non-empty string")
    confidence = data.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        raise InvalidOutput(f"confidence must be a number from 0 to 1, got {confidence!r}")
    picos = data.get("picos", {})
    if not isinstance(picos, dict):
        raise InvalidOutput("picos must be an object with P, I, C, O, S")
    judgement = {str(k).upper(): str(v) for k, v in picos.items() if str(k).upper() in PICOS_ELEMENTS}
    return ScreeningAnswer(decision.strip().lower(), reason.strip(), float(confidence), judgement)
