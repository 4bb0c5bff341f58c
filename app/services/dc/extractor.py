"""Extracting one record's fields with every model of the task: prompt, cache, call, repair once, then per
field normalise, verify the evidence and judge agreement.

Every model call goes through the cache under ``dc:extraction:<dataset id>:<sha256 of provider, model, prompt
version, messages, params>`` (so deleting a dataset can delete its cached answers, and a resumed batch never
pays twice); a cached answer costs 0 tokens. The record text is in the request body only: nothing here logs it,
and error messages name the model and the problem, never the text or a value.

A field goes to human review (``review_required``) when the models disagree, or when it is required and has no
agreed value or its evidence could not be verified in the record.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from app.cache import Cache
from app.llm.client import ChatClient, LLMRequestError, LLMUnavailable
from app.llm.extraction_prompts import (
    EXTRACTION_PARAMS,
    EXTRACTION_PROMPT_VERSION,
    build_extraction_messages,
    extraction_repair_messages,
    parse_extraction_answer,
)
from app.llm.models import ModelSpec
from app.llm.pricing import estimate_cost, upper_cost
from app.llm.prompts import InvalidOutput
from app.services.extraction import (
    FieldSpec,
    NormalisationError,
    field_agreement,
    normalise_value,
    verify_evidence,
)
from app.services.record_screening import close_llm_calls

logger = logging.getLogger(__name__)


def extraction_cache_key(dataset_id: int, spec: ModelSpec, prompt_version: str,
                         messages: list[dict[str, str]]) -> str:
    """``dc:extraction:<dataset id>:<sha256>`` of everything that determines the answer."""
    material = json.dumps({"provider": spec.provider, "model": spec.model, "prompt_version": prompt_version,
                           "messages": messages, "params": EXTRACTION_PARAMS},
                          sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return f"dc:extraction:{dataset_id}:{hashlib.sha256(material.encode()).hexdigest()}"


@dataclass
class ModelExtraction:
    """One model's answer for one record: raw ``{name: {value, evidence}}`` (None when the model failed)."""

    model: str
    answer: dict[str, dict[str, Any]] | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cached: bool = False
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """The ``decisions`` entry of the result row (tokens, cost, error; no record text)."""
        return {"model": self.model, "decision": None if self.answer is None else "extracted",
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost": self.cost, "cached": self.cached, "error": self.error}


@dataclass
class RecordExtraction:
    """Every model's answer and the per-field outcome of one record."""

    models: list[ModelExtraction]
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: bool = False
    error: str | None = None

    @property
    def review_fields(self) -> list[str]:
        """Fields a human must settle."""
        return [name for name, f in self.fields.items() if f.get("review_required")]

    @property
    def has_conflict(self) -> bool:
        """Whether the models disagreed on any field."""
        return any(not f.get("agreed") for f in self.fields.values())


def judge_fields(specs: Sequence[FieldSpec], answers: Mapping[str, dict[str, dict[str, Any]]],
                 text: str) -> dict[str, dict[str, Any]]:
    """Per field: normalised value per model, evidence verified, agreement, flags and the review need."""
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        by_model: dict[str, Any] = {}
        evidence_by_model: dict[str, dict[str, Any]] = {}
        flags: list[str] = []
        for model, answer in answers.items():
            raw = answer.get(spec.name) or {}
            try:
                value = normalise_value(raw.get("value"), spec)
            except NormalisationError as exc:
                value = None
                flags.append(f"invalid:{model}")
                evidence_by_model[model] = {"quote": "", "verified": False, "error": str(exc)}
                by_model[model] = None
                continue
            quote = str(raw.get("evidence") or "")
            match = verify_evidence(quote, text)
            # a "no"/absent value needs no quote; any other value must be backed by one found in the record
            needs_quote = value is not None and not (value is False and not quote)
            verified = match.verified if needs_quote else None
            if needs_quote and not match.verified:
                flags.append(f"unverified:{model}")
            by_model[model] = value
            evidence_by_model[model] = {"quote": quote, "verified": verified, "start": match.start, "end": match.end}
        agreement = field_agreement(by_model, spec)
        verified_values = [e["verified"] for e in evidence_by_model.values() if e.get("verified") is not None]
        verified = all(verified_values) if verified_values else None
        if not agreement.agreed:
            flags.append("disagreement")
        if spec.required and agreement.agreed and agreement.value is None:
            flags.append("missing_required")
        review = (not agreement.agreed) or (spec.required and (agreement.value is None or verified is False))
        evidence = next((e["quote"] for e in evidence_by_model.values() if e.get("verified")), "")
        out[spec.name] = {"value": agreement.value if agreement.agreed else None, "evidence": evidence,
                          "page": None, "agreed": agreement.agreed, "by_model": by_model, "verified": verified,
                          "evidence_by_model": evidence_by_model, "flags": flags, "review_required": bool(review)}
    return out


class RecordExtractor:
    """Extracts records with the task's models; thread-safe; ``close`` when done."""

    def __init__(self, models: list[ModelSpec], clients: dict[str, ChatClient], cache: Cache | None,
                 prices: Mapping[str, Mapping[str, float]], specs: Sequence[FieldSpec], dataset_id: int,
                 cache_ttl: float | None, prompt_version: str = EXTRACTION_PROMPT_VERSION) -> None:
        self.models = models
        self.clients = clients
        self.cache = cache
        self.prices = prices
        self.specs = list(specs)
        self.dataset_id = dataset_id
        self.cache_ttl = cache_ttl
        self.prompt_version = prompt_version
        self.concurrency = max(1, min(c.provider.max_concurrency for c in clients.values()))
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency * len(models), thread_name_prefix="dc-call")

    def close(self) -> None:
        """Stop the call threads, close the HTTP clients and persist cache counters."""
        close_llm_calls(self._pool, self.clients, self.cache)

    def max_cost(self, text: str) -> float:
        """An upper estimate (USD) of extracting ``text`` with every model without the cache (``upper_cost``)."""
        return upper_cost(self.prices, [spec.key for spec in self.models],
                          build_extraction_messages(self.specs, text), int(EXTRACTION_PARAMS.get("max_tokens") or 2000))

    def extract(self, text: str) -> RecordExtraction:
        """Every model's answer and the per-field outcome; LLMUnavailable only when a provider stays down."""
        messages = build_extraction_messages(self.specs, text)
        keys = [extraction_cache_key(self.dataset_id, spec, self.prompt_version, messages) for spec in self.models]
        hits = self.cache.get_many(keys) if self.cache is not None else {}
        results: list[ModelExtraction | None] = [None] * len(self.models)
        futures = {}
        for index, spec in enumerate(self.models):
            hit = hits.get(keys[index])
            if isinstance(hit, dict) and isinstance(hit.get("answer"), dict):
                results[index] = ModelExtraction(spec.key, hit["answer"], cached=True)
            else:
                futures[index] = self._pool.submit(self._call, spec, messages, keys[index])
        unavailable: LLMUnavailable | None = None
        for index, future in futures.items():
            try:
                results[index] = future.result()
            except LLMUnavailable as exc:
                unavailable = exc
        if unavailable is not None:
            raise unavailable
        done = [r for r in results if r is not None]
        failures = [r for r in done if r.answer is None]
        if failures:
            return RecordExtraction(done, {}, True, "; ".join(f"{r.model}: {r.error}" for r in failures))
        answers = {r.model: r.answer for r in done if r.answer is not None}
        return RecordExtraction(done, judge_fields(self.specs, answers, text))

    def _call(self, spec: ModelSpec, messages: list[dict[str, str]], key: str) -> ModelExtraction:
        client = self.clients[spec.provider]
        prompt_tokens = completion_tokens = 0
        try:
            completion = client.complete(spec.model, messages, EXTRACTION_PARAMS)
            prompt_tokens, completion_tokens = completion.prompt_tokens, completion.completion_tokens
            try:
                answer = parse_extraction_answer(completion.content, self.specs)
            except InvalidOutput as problem:
                logger.info("%s gave invalid extraction output (%s); one repair attempt", spec.key, problem)
                repaired = client.complete(spec.model, extraction_repair_messages(messages, completion.content,
                                                                                  str(problem)), EXTRACTION_PARAMS)
                prompt_tokens += repaired.prompt_tokens
                completion_tokens += repaired.completion_tokens
                try:
                    answer = parse_extraction_answer(repaired.content, self.specs)
                except InvalidOutput as final:
                    return self._failed(spec, f"invalid output after one repair attempt: {final}",
                                        prompt_tokens, completion_tokens)
        except LLMRequestError as exc:
            # only the status part: a provider's error body may echo the request, i.e. the record text
            return self._failed(spec, f"request refused ({str(exc).split(':', 1)[0]})", prompt_tokens,
                                completion_tokens)
        cost = estimate_cost(self.prices, spec.key, prompt_tokens, completion_tokens)
        if self.cache is not None:
            self.cache.set(key, {"answer": answer, "prompt_tokens": prompt_tokens,
                                 "completion_tokens": completion_tokens, "cost": cost,
                                 "prompt_version": self.prompt_version}, self.cache_ttl)
        return ModelExtraction(spec.key, answer, prompt_tokens, completion_tokens, cost)

    def _failed(self, spec: ModelSpec, error: str, prompt_tokens: int, completion_tokens: int) -> ModelExtraction:
        logger.warning("%s failed a record: %s", spec.key, error)
        return ModelExtraction(spec.key, None, prompt_tokens, completion_tokens,
                               estimate_cost(self.prices, spec.key, prompt_tokens, completion_tokens), error=error)
