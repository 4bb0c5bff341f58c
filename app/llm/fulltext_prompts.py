"""The full-text screening prompt: eligibility with a PRISMA exclusion reason and 12 fields with evidence.

Each model reads the document (or one part of it, for a document longer than its context) and answers one JSON
object: a decision, an exclusion reason from ``EXCLUSION_REASONS`` and, per field of ``FIELDS``,
``{value, evidence, page}`` — ``evidence`` a verbatim quote of the document, ``page`` the ``[page N]`` marker it
is under. ``FULLTEXT_PROMPT_VERSION`` goes into every cache key and task snapshot: change it whenever the wording
or the answer format changes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from app.llm.prompts import InvalidOutput, json_object

FULLTEXT_PROMPT_VERSION = "asl-ft-2026-12-v1"
DECISIONS = ("include", "exclude", "uncertain")
EXCLUSION_REASONS = ("wrong population", "wrong intervention", "wrong comparator", "wrong outcomes",
                     "wrong study design", "not a primary study", "duplicate publication", "other")
PICOS_LABELS = {"P": "population", "I": "intervention", "C": "comparison", "O": "outcome", "S": "study design"}


@dataclass(frozen=True)
class FieldSpec:
    """One extraction field: its name in answers and results, what it asks for, and how values compare."""

    name: str
    description: str
    kind: str = "text"   # text | category | counts | duration (see app/services/fulltext/agreement.py)


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("study_design", "study design (e.g. randomised controlled trial, cluster randomised trial, cohort, "
                              "case-control, cross-sectional, qualitative, systematic review, laboratory study)",
              "category"),
    FieldSpec("population_setting", "population and setting: country and care setting"),
    FieldSpec("participants", "participants: number randomised / number analysed", "counts"),
    FieldSpec("intervention", "the intervention"),
    FieldSpec("comparator", "the comparator (control condition)"),
    FieldSpec("primary_outcomes", "primary outcomes"),
    FieldSpec("secondary_outcomes", "secondary outcomes"),
    FieldSpec("follow_up_duration", "follow-up duration", "duration"),
    FieldSpec("main_results", "main results: effect estimates with confidence intervals"),
    FieldSpec("risk_of_bias", "risk-of-bias notes: randomisation, allocation concealment, blinding, attrition"),
    FieldSpec("funding_conflicts", "funding and conflicts of interest"),
    FieldSpec("authors_conclusion", "the authors' conclusion"),
)
FIELD_NAMES = tuple(f.name for f in FIELDS)
FIELD_KINDS = {f.name: f.kind for f in FIELDS}
MAX_OUTPUT_TOKENS = 2500
REQUEST_PARAMS: dict[str, Any] = {"temperature": 0, "max_tokens": MAX_OUTPUT_TOKENS,
                                  "response_format": {"type": "json_object"}}

# The first line of the system prompt: the simulator recognises full-text requests by it.
SYSTEM_MARKER = "You screen the FULL TEXT of a study report for a systematic review"
SYSTEM_PROMPT = (
    f"{SYSTEM_MARKER} (the PRISMA full-text stage) and extract its key characteristics.\n"
    "Judge eligibility only against the review's PICOS and criteria. Answer with one JSON object and nothing "
    'else: {"decision": "include" | "exclude" | "uncertain", "exclusion_reason": <one of: '
    + ", ".join(f'"{r}"' for r in EXCLUSION_REASONS)
    + '> or null (required when the decision is exclude), "reason": "<one or two sentences>", '
    '"confidence": <0 to 1>, "fields": {<field name>: {"value": "<short answer>" or null, '
    '"evidence": "<verbatim quote from the document supporting the value>" or null, '
    '"page": <page number from the [page N] markers> or null}}}.\n'
    "Fields: " + "; ".join(f"{f.name} = {f.description}" for f in FIELDS) + ".\n"
    "Quote evidence word for word from the document (it is checked against the text); use null for value, "
    "evidence and page when the document does not report a field. Never invent numbers."
)
# canonical study designs, most specific first
DESIGNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("systematic review", ("systematic review", "meta-analysis", "meta analysis")),
    ("cluster randomised trial", ("cluster randomi", "cluster-randomi")),
    ("non-randomised trial", ("non-randomi", "nonrandomi", "quasi-experiment", "controlled before")),
    ("randomised controlled trial", ("randomised", "randomized", "rct")),
    ("cohort study", ("cohort",)),
    ("case-control study", ("case-control", "case control")),
    ("cross-sectional study", ("cross-sectional", "cross sectional", "survey")),
    ("qualitative study", ("qualitative", "interview", "focus group")),
    ("mixed methods study", ("mixed method", "situational analysis")),
    ("laboratory study", ("laboratory", "in vitro", "crystal", "enzyme", "assay")),
)


def design_of(value: str) -> str:
    """The canonical study design named in ``value`` (or the normalised value itself)."""
    text = value.lower()
    for canonical, markers in DESIGNS:
        if any(marker in text for marker in markers):
            return canonical
    return " ".join(re.findall(r"[a-z0-9]+", text))




class InvalidFulltextOutput(InvalidOutput):
    """The answer is not the JSON object the prompt asks for; the message says why."""


@dataclass
class FieldAnswer:
    """One field as a model answered it."""

    value: str | None
    evidence: str | None
    page: int | None


@dataclass
class FulltextAnswer:
    """A validated answer for a document or one part of it."""

    decision: str
    exclusion_reason: str | None
    reason: str
    confidence: float
    fields: dict[str, FieldAnswer] = field(default_factory=dict)


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def criteria_lines(picos: dict[str, str], inclusion: str | None, exclusion: str | None) -> list[str]:
    """The review criteria block of the user message."""
    lines = ["Review criteria (PICOS):"]
    for element, label in PICOS_LABELS.items():
        lines.append(f"{element} ({label}): {_one_line(picos.get(element)) or 'not specified'}")
    lines.append(f"Inclusion criteria: {_one_line(inclusion) or 'none given'}")
    lines.append(f"Exclusion criteria: {_one_line(exclusion) or 'none given'}")
    return lines


def build_messages(picos: dict[str, str], inclusion: str | None, exclusion: str | None, title: str,
                   document_text: str, part: int = 1, parts: int = 1,
                   sections: list[str] | None = None) -> list[dict[str, str]]:
    """System + user messages for a document, or for part ``part`` of ``parts`` of it (pages marked)."""
    lines = criteria_lines(picos, inclusion, exclusion)
    lines.append("")
    lines.append(f"Record title: {_one_line(title)}")
    if parts > 1:
        lines.append(f"This is part {part} of {parts} of the document (sections: "
                     f"{', '.join(sections or []) or 'unnamed'}). Judge and extract from this part only: use "
                     "null for fields this part does not report, and exclude only when this part shows that a "
                     "criterion is not met.")
    lines.append("Document text (pages marked [page N]):")
    lines.append(document_text)
    lines.append("")
    lines.append("Reply with the JSON object only.")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}]


def repair_messages(messages: list[dict[str, str]], bad_output: str, problem: str) -> list[dict[str, str]]:
    """The one repair attempt: the conversation, the invalid answer, and a request for the valid object."""
    return [*messages, {"role": "assistant", "content": bad_output[:4000]},
            {"role": "user", "content": f"Your answer was not valid: {problem}. Reply again with only the JSON "
                                        "object in the required format."}]


def prompt_overhead_tokens(picos: dict[str, str], inclusion: str | None, exclusion: str | None,
                           title: str) -> int:
    """Estimated tokens of a message without its document text (4 characters a token)."""
    empty = build_messages(picos, inclusion, exclusion, title, "", 1, 2, ["x"])
    return sum(len(m["content"]) for m in empty) // 4 + 50


def _reason(value: Any) -> str | None:
    if value in (None, ""):
        return None
    text = str(value).strip().lower().replace("_", " ")
    if text not in EXCLUSION_REASONS:
        raise InvalidFulltextOutput(f"exclusion_reason must be one of {', '.join(EXCLUSION_REASONS)} or null, "
                                    f"got {value!r}")
    return text


def _field(name: str, raw: Any) -> FieldAnswer:
    if raw is None:
        return FieldAnswer(None, None, None)
    if not isinstance(raw, dict):
        raise InvalidFulltextOutput(f"fields.{name} must be an object with value, evidence, page")
    value, evidence, page = raw.get("value"), raw.get("evidence"), raw.get("page")
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False)
    if value is not None and not isinstance(value, str):
        value = str(value)
    if evidence is not None and not isinstance(evidence, str):
        raise InvalidFulltextOutput(f"fields.{name}.evidence must be a string or null")
    if isinstance(page, str) and page.strip().isdigit():
        page = int(page.strip())
    if page is not None and (isinstance(page, bool) or not isinstance(page, int)):
        raise InvalidFulltextOutput(f"fields.{name}.page must be a page number or null")
    value = value.strip() or None if isinstance(value, str) else None
    evidence = evidence.strip() or None if isinstance(evidence, str) else None
    return FieldAnswer(value, evidence, page)


def parse_answer(content: str) -> FulltextAnswer:
    """Validate a model's answer; InvalidFulltextOutput says what is wrong. Fields left out count as null."""
    try:
        data = json_object(content)
    except InvalidOutput as exc:
        raise InvalidFulltextOutput(str(exc)) from None
    decision = data.get("decision")
    if not isinstance(decision, str) or decision.strip().lower() not in DECISIONS:
        raise InvalidFulltextOutput(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    decision = decision.strip().lower()
    reason_code = _reason(data.get("exclusion_reason"))
    if decision == "exclude" and reason_code is None:
        raise InvalidFulltextOutput("exclusion_reason is required when the decision is exclude")
    if decision != "exclude":
        reason_code = None
    confidence = data.get("confidence", 0.5)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        raise InvalidFulltextOutput(f"confidence must be a number from 0 to 1, got {confidence!r}")
    fields = data.get("fields") or {}
    if not isinstance(fields, dict):
        raise InvalidFulltextOutput("fields must be an object keyed by field name")
    parsed = {name: _field(name, fields.get(name)) for name in FIELD_NAMES}
    return FulltextAnswer(decision, reason_code, str(data.get("reason") or "").strip(), float(confidence), parsed)


def answer_to_dict(answer: FulltextAnswer) -> dict[str, Any]:
    """JSON-able form (what the cache stores)."""
    return {"decision": answer.decision, "exclusion_reason": answer.exclusion_reason, "reason": answer.reason,
            "confidence": answer.confidence,
            "fields": {name: {"value": f.value, "evidence": f.evidence, "page": f.page}
                       for name, f in answer.fields.items()}}


def answer_from_dict(data: dict[str, Any]) -> FulltextAnswer:
    """The inverse of ``answer_to_dict`` (a cached answer)."""
    return FulltextAnswer(data["decision"], data.get("exclusion_reason"), data.get("reason") or "",
                          float(data.get("confidence") or 0.0),
                          {name: FieldAnswer(f.get("value"), f.get("evidence"), f.get("page"))
                           for name, f in (data.get("fields") or {}).items()})
