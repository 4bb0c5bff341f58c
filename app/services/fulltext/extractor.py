"""Full-text screening of one document by every model: parts, cache, call, validate, repair once, merge, combine.

Per model, a document longer than the model's context (``FULLTEXT_CONTEXT_TOKENS``, per model
``FULLTEXT_MODEL_CONTEXT``) is cut into section-aware parts (``sections.plan_parts``); every part is one call
through the cache (``asl:fulltext:<sha256 of provider, model, prompt version, messages, params>``, TTL
``FULLTEXT_CACHE_TTL_SECONDS``, default 1 h), and the model's part answers are merged (``merge_parts``).
Then the models' answers are combined: decision rule, exclusion reason, per-field evidence and agreement.
A cached answer costs 0 tokens (nothing was paid); tokens and cost are summed per document.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from app.cache import Cache
from app.config import Settings
from app.llm.client import ChatClient, LLMRequestError, LLMUnavailable
from app.llm.fulltext_prompts import (
    FULLTEXT_PROMPT_VERSION,
    MAX_OUTPUT_TOKENS,
    REQUEST_PARAMS,
    FieldAnswer,
    FulltextAnswer,
    InvalidFulltextOutput,
    answer_from_dict,
    answer_to_dict,
    build_messages,
    parse_answer,
    prompt_overhead_tokens,
    repair_messages,
)
from app.llm.models import ModelSpec
from app.llm.pricing import estimate_cost
from app.services.fulltext.fields import combine_fields, fields_needing_review
from app.services.fulltext.sections import DocumentPart, plan_parts
from app.services.record_screening import Criteria, chat_clients, llm_cache_key

logger = logging.getLogger(__name__)

FULLTEXT_CACHE_PREFIX = "asl:fulltext:"
DEFAULT_FULLTEXT_CACHE_TTL_SECONDS = 3600.0
DEFAULT_CONTEXT_TOKENS = 64000


@dataclass
class Document:
    """A record's full text: its title and the text of each page."""

    literature_id: int
    title: str
    page_texts: list[str]


@dataclass
class ModelAnswer:
    """One model's (merged) answer for a document, with what it cost."""

    model: str
    answer: FulltextAnswer | None
    parts: int = 1
    cached_parts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    error: str | None = None

    def decision_entry(self) -> dict[str, Any]:
        """The ``decisions`` entry of the result row (no raw responses: they are in the cache)."""
        answer = self.answer
        return {"model": self.model, "decision": answer.decision if answer else None,
                "exclusion_reason": answer.exclusion_reason if answer else None,
                "reason": answer.reason if answer else None, "confidence": answer.confidence if answer else None,
                "parts": self.parts, "cached_parts": self.cached_parts, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost": self.cost,
                "cached": self.parts > 0 and self.cached_parts == self.parts, "error": self.error}


@dataclass
class DocumentScreening:
    """Every model's answer and the combined outcome for one document."""

    models: list[ModelAnswer]
    llm_decision: str | None
    exclusion_reason: str | None
    has_conflict: bool
    manual_review_required: bool
    fields: dict[str, Any] | None
    failed: bool
    error: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    review_fields: list[str] = field(default_factory=list)


def fulltext_cache_ttl(config: Mapping[str, Any] | Settings | None) -> float | None:
    """``FULLTEXT_CACHE_TTL_SECONDS`` (default 1 hour; 0 = no expiry)."""
    ttl = Settings.of(config).fulltext.cache_ttl
    return ttl if ttl > 0 else None


def model_contexts(config: Mapping[str, Any] | Settings | None, model_keys: list[str]) -> dict[str, int]:
    """Context window (tokens) per ``provider:model``: ``FULLTEXT_MODEL_CONTEXT``, else FULLTEXT_CONTEXT_TOKENS."""
    settings = Settings.of(config).fulltext
    return {key: settings.context_for(key) for key in model_keys}


def combine_decisions(decisions: list[str]) -> tuple[str, bool]:
    """(llm_decision, has_conflict): unanimous include / exclude, anything else a conflict."""
    if decisions and all(d == "include" for d in decisions):
        return "include", False
    if decisions and all(d == "exclude" for d in decisions):
        return "exclude", False
    return "conflict", True


def merge_parts(answers: list[FulltextAnswer]) -> FulltextAnswer:
    """One model's answer for a whole document from its answers for the parts, in document order.

    Exclusion needs evidence that a criterion fails, so one part showing it excludes (the most frequent reason
    wins, ties by order); else any include includes; else uncertain. Each field takes the first part that
    reports it (later parts only fill what earlier ones left null).
    """
    if len(answers) == 1:
        return answers[0]
    excluded = [a for a in answers if a.decision == "exclude"]
    if excluded:
        reasons = Counter(a.exclusion_reason for a in excluded)
        best = max(reasons.values())
        reason = next(a.exclusion_reason for a in excluded if reasons[a.exclusion_reason] == best)
        decision, explanation = "exclude", next(a.reason for a in excluded if a.exclusion_reason == reason)
        confidence = max(a.confidence for a in excluded)
    elif any(a.decision == "include" for a in answers):
        decision, reason = "include", None
        explanation = next(a.reason for a in answers if a.decision == "include")
        confidence = min(a.confidence for a in answers if a.decision == "include")
    else:
        decision, reason, explanation, confidence = "uncertain", None, answers[0].reason, answers[0].confidence
    fields: dict[str, FieldAnswer] = {}
    for answer in answers:
        for name, value in answer.fields.items():
            if name not in fields or (fields[name].value is None and value.value is not None):
                fields[name] = value
    return FulltextAnswer(decision, reason, explanation, confidence, fields)


class FulltextExtractor:
    """Screens documents with a task's models; thread-safe; ``close`` when done."""

    def __init__(self, models: list[ModelSpec], clients: dict[str, ChatClient], cache: Cache | None,
                 prices: Mapping[str, Mapping[str, float]], contexts: Mapping[str, int],
                 cache_prefix: str = FULLTEXT_CACHE_PREFIX,
                 cache_ttl: float | None = DEFAULT_FULLTEXT_CACHE_TTL_SECONDS,
                 prompt_version: str = FULLTEXT_PROMPT_VERSION) -> None:
        self.models = models
        self.clients = clients
        self.cache = cache
        self.prices = prices
        self.contexts = contexts
        self.cache_prefix = cache_prefix
        self.cache_ttl = cache_ttl
        self.prompt_version = prompt_version
        self.concurrency = max(1, min(c.provider.max_concurrency for c in clients.values()))
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency * len(models), thread_name_prefix="ft-call")

    def close(self) -> None:
        """Stop the call threads, close HTTP clients, persist cache counters."""
        self._pool.shutdown(wait=True)
        for client in self.clients.values():
            client.close()
        if self.cache is not None:
            try:
                self.cache.flush_counters()
            except Exception:  # noqa: BLE001 - counters are best effort; never fail a batch for them
                logger.warning("could not persist cache counters", exc_info=True)

    def budget_for(self, spec: ModelSpec, criteria: Criteria, title: str) -> int:
        """Tokens of document text one prompt to ``spec`` may carry (its context minus prompt and answer)."""
        overhead = prompt_overhead_tokens(criteria.picos, criteria.inclusion_criteria, criteria.exclusion_criteria,
                                          title)
        return self.contexts.get(spec.key, DEFAULT_CONTEXT_TOKENS) - overhead - MAX_OUTPUT_TOKENS

    def screen(self, criteria: Criteria, document: Document) -> DocumentScreening:
        """Every model's answer and the combined outcome; LLMUnavailable only when a provider stays down."""
        futures = [self._pool.submit(self._model_answer, spec, criteria, document) for spec in self.models[1:]]
        outcomes: list[ModelAnswer | LLMUnavailable] = []
        try:
            outcomes.append(self._model_answer(self.models[0], criteria, document))
        except LLMUnavailable as exc:
            outcomes.append(exc)
        for future in futures:
            try:
                outcomes.append(future.result())
            except LLMUnavailable as exc:
                outcomes.append(exc)
        down = next((o for o in outcomes if isinstance(o, LLMUnavailable)), None)
        if down is not None:
            raise down
        answers = [o for o in outcomes if isinstance(o, ModelAnswer)]
        prompt_tokens = sum(a.prompt_tokens for a in answers)
        completion_tokens = sum(a.completion_tokens for a in answers)
        cost = round(sum(a.cost for a in answers), 8)
        failures = [a for a in answers if a.answer is None]
        if failures:
            return DocumentScreening(answers, None, None, False, False, None, True,
                                     "; ".join(f"{a.model}: {a.error}" for a in failures),
                                     prompt_tokens, completion_tokens, cost)
        decided = [a.answer for a in answers if a.answer is not None]
        llm_decision, conflict = combine_decisions([a.decision for a in decided])
        reasons = [a.exclusion_reason for a in decided if a.exclusion_reason]
        exclusion_reason = reasons[0] if llm_decision == "exclude" and reasons else None
        reasons_differ = llm_decision == "exclude" and len(set(reasons)) > 1
        fields = combine_fields({a.model: a.answer.fields for a in answers if a.answer is not None},
                                document.page_texts)
        review = fields_needing_review(fields)
        return DocumentScreening(answers, llm_decision, exclusion_reason, conflict,
                                 conflict or reasons_differ or bool(review), fields, False, None,
                                 prompt_tokens, completion_tokens, cost, review)

    # -- one model -----------------------------------------------------------------------------------------
    def _model_answer(self, spec: ModelSpec, criteria: Criteria, document: Document) -> ModelAnswer:
        parts = plan_parts(document.page_texts, self.budget_for(spec, criteria, document.title))
        messages = [build_messages(criteria.picos, criteria.inclusion_criteria, criteria.exclusion_criteria,
                                   document.title, part.text(), index, len(parts), _sections(part, len(parts)))
                    for index, part in enumerate(parts, start=1)]
        keys = [llm_cache_key(spec.provider, spec.model, self.prompt_version, m, REQUEST_PARAMS, self.cache_prefix)
                for m in messages]
        hits = self.cache.get_many(keys) if self.cache is not None else {}
        outcome = ModelAnswer(spec.key, None, parts=len(parts))
        part_answers: list[FulltextAnswer] = []
        for key, part_messages in zip(keys, messages, strict=False):
            hit = hits.get(key)
            if isinstance(hit, dict) and hit.get("answer"):
                part_answers.append(answer_from_dict(hit["answer"]))
                outcome.cached_parts += 1
                continue
            answer, error = self._call(spec, part_messages, key, outcome)
            if answer is None:
                outcome.error = error
                return outcome
            part_answers.append(answer)
        outcome.answer = merge_parts(part_answers)
        return outcome

    def _call(self, spec: ModelSpec, messages: list[dict[str, str]], key: str,
              outcome: ModelAnswer) -> tuple[FulltextAnswer | None, str | None]:
        """One part's call (plus one repair); the answer is cached under ``key``; tokens added to ``outcome``."""
        client = self.clients[spec.provider]
        prompt_tokens = completion_tokens = 0
        answer: FulltextAnswer | None = None
        error: str | None = None
        try:
            completion = client.complete(spec.model, messages, REQUEST_PARAMS)
            prompt_tokens, completion_tokens = completion.prompt_tokens, completion.completion_tokens
            try:
                answer = parse_answer(completion.content)
            except InvalidFulltextOutput as problem:
                logger.info("%s gave invalid full-text output (%s); one repair attempt", spec.key, problem)
                repaired = client.complete(spec.model, repair_messages(messages, completion.content, str(problem)),
                                           REQUEST_PARAMS)
                prompt_tokens += repaired.prompt_tokens
                completion_tokens += repaired.completion_tokens
                try:
                    answer = parse_answer(repaired.content)
                except InvalidFulltextOutput as final_problem:
                    error = f"invalid output after one repair attempt: {final_problem}"
        except LLMRequestError as exc:
            error = str(exc)
        cost = estimate_cost(self.prices, spec.key, prompt_tokens, completion_tokens)
        outcome.prompt_tokens += prompt_tokens
        outcome.completion_tokens += completion_tokens
        outcome.cost = round(outcome.cost + cost, 8)
        if answer is not None and self.cache is not None:
            self.cache.set(key, {"answer": answer_to_dict(answer), "prompt_tokens": prompt_tokens,
                                 "completion_tokens": completion_tokens, "cost": cost,
                                 "prompt_version": self.prompt_version}, self.cache_ttl)
        if error:
            logger.warning("%s failed a document part: %s", spec.key, error)
        return answer, error


def _sections(part: DocumentPart, parts: int) -> list[str] | None:
    return part.sections if parts > 1 else None


def build_extractor(snapshot: Mapping[str, Any], config: Mapping[str, Any] | Settings | None, cache: Cache | None,
                    cache_prefix: str = FULLTEXT_CACHE_PREFIX,
                    cache_ttl: float | None = DEFAULT_FULLTEXT_CACHE_TTL_SECONDS,
                    limits_engine: Any = None) -> FulltextExtractor:
    """A FulltextExtractor for a task's model snapshot (its frozen contexts); keys and limits from ``config``
    (fleet-wide through ``limits_engine``, see ``chat_clients``)."""
    from app.llm.pricing import price_table
    settings = Settings.of(config)
    models = [ModelSpec(m["provider"], m["model"]) for m in snapshot.get("models") or []]
    clients = chat_clients(snapshot, settings, limits_engine)
    contexts = dict(snapshot.get("contexts") or model_contexts(settings, [m.key for m in models]))
    return FulltextExtractor(models, clients, cache, price_table(settings), contexts, cache_prefix, cache_ttl,
                             str(snapshot.get("prompt_version") or FULLTEXT_PROMPT_VERSION))
