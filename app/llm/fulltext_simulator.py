"""The simulator's answers to full-text screening prompts: real quotes from the document, deterministic.

``handles(messages)`` recognises a full-text request (its system prompt); ``answer`` reads the document from the
user message (pages under ``[page N]`` markers) and fills each of the 12 fields with the first sentence that a
field's keyword rule finds — its value derived from that sentence, its evidence the sentence itself (whitespace
collapsed and line-break hyphenation undone, as a model would quote it) and its page. A field no rule finds is
null (not reported). Each simulated model takes the second candidate sentence for about one field in five
(a deterministic hash of model, field and title), so two models sometimes disagree.

Eligibility: a systematic review is "not a primary study"; a record whose title and text miss the PICOS
population or intervention terms is "wrong population" / "wrong intervention"; a design other than a randomised
trial, when the PICOS asks for one, is "wrong study design"; else include.

The ``wrong_quote_fields`` knob plants a quote that is NOT in the document for the named fields (every model),
so a test can see evidence verification flag them ``unverified``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

from app.llm.fulltext_prompts import FIELD_NAMES, SYSTEM_MARKER, design_of
from app.llm.relevance import relevance

PLANTED_QUOTE = "All 9,999 participants were cured within one day, as this report does not say anywhere."
_PICOS = re.compile(r"^([PICOS]) \([^)]*\): (.*)$", re.MULTILINE)
_INCLUSION = re.compile(r"^Inclusion criteria: (.*)$", re.MULTILINE)
_EXCLUSION = re.compile(r"^Exclusion criteria: (.*)$", re.MULTILINE)
_TITLE = re.compile(r"^Record title: (.*)$", re.MULTILINE)
_DOCUMENT = re.compile(r"^Document text \(pages marked \[page N\]\):\n(.*)\n\nReply with the JSON object only\.\Z",
                       re.MULTILINE | re.DOTALL)
_PAGE = re.compile(r"^\[page (\d+)\]$", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")
_HYPHEN_BREAK = re.compile(r"(\w)-\s*\n\s*(\w)")
_NUMBER = r"(\d[\d,]*)"
_DURATION = re.compile(r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|eighteen)\s+"
                       r"(days?|weeks?|months?|years?)\b", re.IGNORECASE)

RULES: dict[str, re.Pattern[str]] = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in {
    "study_design": r"randomi[sz]ed controlled trial|systematic review|meta-analys|qualitative (study|research|"
                    r"approach|design)|cohort study|cross-sectional|case-control|situational analysis|mixed.methods?"
                    r"|in vitro|crystal structure",
    "population_setting": r"\b(was|were) (conducted|carried out|performed|undertaken)\b|\bsetting\b|"
                          r"\b(hospitals?|clinics?|primary care|community)\b.*\b(in|of) [A-Z]",
    "participants": r"\b\d[\d,]*\s+(participants|patients|subjects|people|adults|respondents|individuals)\b",
    "intervention": r"intervention group|\bintervention (was|consisted)|\b(participants|patients|subjects) (in "
                    r"the \w+ group )?received\b|\bwere treated with\b",
    "comparator": r"control group|usual care|placebo|\bcomparator\b",
    "primary_outcomes": r"primary (outcome|end ?point)",
    "secondary_outcomes": r"secondary (outcome|end ?point)",
    "follow_up_duration": r"follow(ed)?[- ]?(up)?\b.*\b(\d+|one|two|three|six|twelve|eighteen)\s+(days?|weeks?|"
                          r"months?|years?)",
    "main_results": r"95\s?%\s?CI|confidence interval|odds ratio|hazard ratio|risk ratio|mean difference",
    "risk_of_bias": r"allocation|conceal|\bblind|\bmask|attrition|lost to follow|computer-generated",
    "funding_conflicts": r"funded by|\bfunding\b|\bgrant\b|competing interests|conflicts? of interest",
    "authors_conclusion": r"^in conclusion|we conclude|^conclusions?:|these (findings|results) suggest",
}.items()}
VALUE_CHARS = 200


def handles(messages: Iterable[Any]) -> bool:
    """Whether a chat request is a full-text screening prompt."""
    return any(isinstance(m, dict) and m.get("role") == "system" and str(m.get("content", "")).startswith(
        SYSTEM_MARKER) for m in messages)


def _unit_hash(*parts: str) -> float:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _pages(document: str) -> list[tuple[int, str]]:
    """``(page, text)`` pieces of the prompt's document text."""
    marks = list(_PAGE.finditer(document))
    pieces = []
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(document)
        pieces.append((int(mark.group(1)), document[mark.end():end].strip("\n")))
    return pieces or [(1, document)]


def quote_of(sentence: str) -> str:
    """A sentence as a model quotes it: line-break hyphenation undone, whitespace collapsed."""
    return " ".join(_HYPHEN_BREAK.sub(r"\1\2", sentence).split())


def _sentences(pieces: list[tuple[int, str]]) -> list[tuple[int, str]]:
    found = []
    for page, text in pieces:
        for paragraph in re.split(r"\n\s*\n", text):
            for sentence in _SENTENCE_END.split(paragraph):
                sentence = sentence.strip()
                if len(sentence) >= 25:
                    found.append((page, sentence))
    return found


def _short(text: str) -> str:
    if len(text) <= VALUE_CHARS:
        return text
    return text[:VALUE_CHARS].rsplit(" ", 1)[0] + " …"


def field_value(name: str, quote: str) -> str:
    """The value a simulated model reports for field ``name`` from its evidence sentence."""
    if name == "study_design":
        return design_of(quote)
    if name == "participants":
        randomised = re.search(_NUMBER + r"\s+(?:\w+\s+){0,3}?randomi[sz]ed", quote, re.IGNORECASE)
        analysed = re.search(_NUMBER + r"\s+(?:\w+\s+){0,3}?analy[sz]ed", quote, re.IGNORECASE)
        if randomised or analysed:
            return (f"{randomised.group(1) if randomised else 'not reported'} randomised / "
                    f"{analysed.group(1) if analysed else 'not reported'} analysed")
        number = re.search(_NUMBER + r"\s+(\w+)", quote)
        return f"{number.group(1)} {number.group(2)}" if number else _short(quote)
    if name == "follow_up_duration":
        duration = _DURATION.search(quote)
        return duration.group(0) if duration else _short(quote)
    return _short(quote)


def _parse(user: str) -> tuple[dict[str, str], str | None, str | None, str, list[tuple[int, str]]]:
    picos = {m.group(1): m.group(2).strip() for m in _PICOS.finditer(user) if m.group(2).strip() != "not specified"}
    inclusion, exclusion = _INCLUSION.search(user), _EXCLUSION.search(user)
    title = _TITLE.search(user)
    document = _DOCUMENT.search(user)
    return (picos,
            inclusion.group(1) if inclusion and inclusion.group(1) != "none given" else None,
            exclusion.group(1) if exclusion and exclusion.group(1) != "none given" else None,
            title.group(1).strip() if title else "",
            _pages(document.group(1) if document else user))


def _decision(picos: dict[str, str], inclusion: str | None, title: str, text: str,
              design: str | None) -> tuple[str, str | None, str]:
    if design == "systematic review":
        return "exclude", "not a primary study", "A systematic review of other studies, not a primary study."
    rel = relevance(picos, inclusion, None, title, text)
    if rel.elements.get("P") == 0:
        return "exclude", "wrong population", "The study population does not match the review's population."
    if rel.elements.get("I") == 0:
        return "exclude", "wrong intervention", "The intervention does not match the review's intervention."
    wants_trials = "randomi" in (picos.get("S") or "").lower()
    if wants_trials and design and design not in ("randomised controlled trial", "cluster randomised trial"):
        return "exclude", "wrong study design", f"A {design}, while the review includes randomised trials."
    return "include", None, f"Meets the PICOS criteria (relevance {rel.score:.2f}; design: {design or 'unclear'})."


def extraction(model: str, user: str, wrong_quote_fields: Iterable[str] = ()) -> dict[str, Any]:
    """The simulated model's answer object for the full-text prompt ``user``."""
    picos, inclusion, _exclusion, title, pieces = _parse(user)
    sentences = _sentences(pieces)
    planted = set(wrong_quote_fields)
    fields: dict[str, Any] = {}
    for name in FIELD_NAMES:
        candidates = [(page, s) for page, s in sentences if RULES[name].search(s)]
        if not candidates:
            fields[name] = {"value": None, "evidence": None, "page": None}
            continue
        pick = 1 if len(candidates) > 1 and _unit_hash("pick", model, name, title) < 0.2 else 0
        page, sentence = candidates[pick]
        quote = quote_of(sentence)
        fields[name] = {"value": field_value(name, quote), "evidence": PLANTED_QUOTE if name in planted else quote,
                        "page": page}
    design = fields["study_design"]["value"]
    text = "\n".join(t for _p, t in pieces)
    decision, reason_code, reason = _decision(picos, inclusion, title, text, design)
    confidence = round(0.6 + 0.35 * _unit_hash("confidence", model, title), 2)
    return {"decision": decision, "exclusion_reason": reason_code, "reason": reason, "confidence": confidence,
            "fields": fields}


def answer(model: str, messages: list[Any], wrong_quote_fields: Iterable[str] = ()) -> str:
    """The content of the simulator's chat answer to a full-text request."""
    user = next((str(m.get("content", "")) for m in messages if isinstance(m, dict) and m.get("role") == "user"), "")
    return json.dumps(extraction(model, user, wrong_quote_fields))
