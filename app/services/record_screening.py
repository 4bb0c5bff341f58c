"""Screening one record with every configured model: prompt, cache, call, validate, repair once, combine.

The engine builds a ``Screener`` from a task's model snapshot (``model_config_snapshot`` at task start) and calls
``screen`` for each record, from several threads. Every model call goes through the LLM cache
(``asl:llm:<sha256 of provider, model, prompt version, messages, params>``) unless ``LLM_CACHE=off``, so a rerun,
retry or resumed batch never pays twice; a cached answer reports 0 tokens and 0 cost (nothing was paid).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine

from app.cache import Cache, get_cache
from app.config import Settings
from app.llm.client import ChatClient, LLMRequestError, LLMUnavailable, RetryPolicy
from app.llm.decision import combine
from app.llm.limits import FleetLimits, limiter_name
from app.llm.models import ModelSpec, parse_screening_models
from app.llm.pricing import estimate_cost, price_table, upper_cost
from app.llm.prompt_limits import DEFAULT_PROMPT_MAX_CHARS_PER_RECORD, cap_record_text
from app.llm.prompts import (
    PROMPT_VERSION,
    REQUEST_PARAMS,
    InvalidOutput,
    ScreeningAnswer,
    build_messages,
    parse_answer,
    repair_messages,
)
from app.llm.providers import ProviderNotConfigured, provider_base_url, provider_settings

logger = logging.getLogger(__name__)

LLM_CACHE_PREFIX = "asl:llm:"
DEFAULT_LLM_CACHE_TTL_SECONDS = 30 * 24 * 3600

__all__ = [
    "PROMPT_VERSION", "Criteria", "LLMUnavailable", "ModelDecision", "NoModelsConfigured", "RecordScreening",
    "RecordText", "Screener", "build_screener", "llm_cache_key", "llm_cache_ttl", "model_config_snapshot",
    "open_llm_cache",
]


class NoModelsConfigured(Exception):
    """SCREENING_MODELS is empty or unusable (bad entry, provider without a base URL, unknown decision rule)."""


@dataclass
class Criteria:
    """What a record is judged against."""

    picos: dict[str, str]
    inclusion_criteria: str | None = None
    exclusion_criteria: str | None = None


@dataclass
class RecordText:
    """The part of a record the models read."""

    literature_id: int
    title: str
    abstract: str | None = None


@dataclass
class ModelDecision:
    """One model's judgement of one record (``decision`` None when this model failed; ``error`` says why)."""

    model: str
    decision: str | None
    reason: str | None
    confidence: float | None
    picos: dict = field(default_factory=dict)
    raw_response: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cached: bool = False
    error: str | None = None
    warning: str | None = None

    def to_dict(self) -> dict:
        """JSON-able form."""
        return asdict(self)


@dataclass
class RecordScreening:
    """Every model's decision and the combined outcome of one record."""

    decisions: list[ModelDecision]
    final_decision: str | None
    has_conflict: bool
    manual_review_required: bool
    failed: bool
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    cost: float


def llm_cache_key(provider: str, model: str, prompt_version: str, messages: list[dict[str, str]],
                  params: Mapping[str, Any], prefix: str = LLM_CACHE_PREFIX) -> str:
    """``<prefix><sha256>`` (``asl:llm:…`` by default) of everything that determines the answer."""
    material = json.dumps(
        {"provider": provider, "model": model, "prompt_version": prompt_version, "messages": messages,
         "params": dict(params)},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )
    return prefix + hashlib.sha256(material.encode()).hexdigest()


def model_config_snapshot(config: Mapping[str, Any] | Settings | None) -> dict:
    """The models, base URLs, prompt version and decision rule a task will use (never an API key)."""
    settings = Settings.of(config)
    try:
        specs = parse_screening_models(settings.llm.screening_models)
    except ValueError as exc:
        raise NoModelsConfigured(str(exc)) from None
    if not specs:
        raise NoModelsConfigured("SCREENING_MODELS is empty: set it to e.g. deepseek:deepseek-chat,qwen:qwen-plus")
    models = []
    for spec in specs:
        try:
            base_url = provider_base_url(spec.provider, settings)
        except ProviderNotConfigured as exc:
            raise NoModelsConfigured(str(exc)) from None
        models.append({"provider": spec.provider, "model": spec.model, "base_url": base_url})
    return {"models": models, "prompt_version": PROMPT_VERSION, "decision_rule": settings.llm.decision_rule}


class Screener:
    """Screens records with the snapshot's models; thread-safe; ``close`` when done."""

    def __init__(self, models: list[ModelSpec], clients: dict[str, ChatClient], cache: Cache | None,
                 prices: Mapping[str, Mapping[str, float]], decision_rule: str = "unanimous",
                 cache_ttl: float | None = DEFAULT_LLM_CACHE_TTL_SECONDS, prompt_version: str = PROMPT_VERSION,
                 cache_prefix: str = LLM_CACHE_PREFIX,
                 prompt_max_chars: int = DEFAULT_PROMPT_MAX_CHARS_PER_RECORD) -> None:
        self.models = models
        self.clients = clients
        self.cache = cache
        self.prices = prices
        self.decision_rule = decision_rule
        self.cache_ttl = cache_ttl
        self.prompt_version = prompt_version
        self.cache_prefix = cache_prefix
        self.prompt_max_chars = prompt_max_chars
        self.concurrency = max(1, min(c.provider.max_concurrency for c in clients.values()))
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency * len(models),
                                        thread_name_prefix="llm-call")

    def close(self) -> None:
        """Stop the call threads, close HTTP clients and persist cache counters."""
        close_llm_calls(self._pool, self.clients, self.cache)

    def screen(self, criteria: Criteria, record: RecordText) -> RecordScreening:
        """Every model's decision and the combined outcome; LLMUnavailable only when a provider stays down."""
        title, abstract, warning = cap_record_text(record.title, record.abstract, self.prompt_max_chars)
        if warning:
            logger.info("record %s: %s", record.literature_id, warning)
        messages = build_messages(criteria.picos or {}, criteria.inclusion_criteria, criteria.exclusion_criteria,
                                  title, abstract)
        keys = [""] * len(self.models)
        hits: dict[str, Any] = {}
        if self.cache is not None:
            # every model's key looked up in one round trip; the misses are called and written one by one
            keys = [llm_cache_key(spec.provider, spec.model, self.prompt_version, messages, REQUEST_PARAMS,
                                  self.cache_prefix) for spec in self.models]
            hits = self.cache.get_many(keys)
        results: list[ModelDecision | LLMUnavailable | None] = [None] * len(self.models)
        to_call: list[int] = []
        for index, spec in enumerate(self.models):
            hit = hits.get(keys[index])
            if isinstance(hit, dict) and hit.get("decision"):
                results[index] = ModelDecision(spec.key, hit["decision"], hit.get("reason"), hit.get("confidence"),
                                               hit.get("picos") or {}, hit.get("raw_response"), 0, 0, 0.0, True,
                                               None)
            else:
                to_call.append(index)
        # every call but the last on the call threads, the last one in this thread (one hand-off fewer a record)
        futures = [(index, self._pool.submit(self._decide, self.models[index], messages, keys[index]))
                   for index in to_call[:-1]]
        if to_call:
            try:
                results[to_call[-1]] = self._decide(self.models[to_call[-1]], messages, keys[to_call[-1]])
            except LLMUnavailable as exc:
                results[to_call[-1]] = exc
        for index, future in futures:
            try:
                results[index] = future.result()
            except LLMUnavailable as exc:
                results[index] = exc
        unavailable = next((r for r in results if isinstance(r, LLMUnavailable)), None)
        if unavailable is not None:
            raise unavailable
        decisions = [r for r in results if isinstance(r, ModelDecision)]
        for decision in decisions:
            decision.warning = warning
        prompt_tokens = sum(d.prompt_tokens for d in decisions)
        completion_tokens = sum(d.completion_tokens for d in decisions)
        cost = round(sum(d.cost for d in decisions), 8)
        failures = [d for d in decisions if d.decision is None]
        if failures:
            return RecordScreening(decisions, None, False, False, True,
                                   "; ".join(f"{d.model}: {d.error}" for d in failures),
                                   prompt_tokens, completion_tokens, cost)
        final = combine([d.decision for d in decisions if d.decision], self.decision_rule)
        return RecordScreening(decisions, final.final_decision, final.has_conflict, final.manual_review_required,
                               False, None, prompt_tokens, completion_tokens, cost)

    def max_cost(self, criteria: Criteria, record: RecordText) -> float:
        """An upper estimate (USD) of screening ``record`` with every model without the cache: the prompt's tokens
        (about four characters a token, plus a quarter for tokenizer differences) and the answer's ``max_tokens``.
        A repair attempt after an invalid answer is not included."""
        title, abstract, _warning = cap_record_text(record.title, record.abstract, self.prompt_max_chars)
        messages = build_messages(criteria.picos or {}, criteria.inclusion_criteria, criteria.exclusion_criteria,
                                  title, abstract)
        return upper_cost(self.prices, [spec.key for spec in self.models], messages,
                          int(REQUEST_PARAMS.get("max_tokens") or 1000))

    def _decide(self, spec: ModelSpec, messages: list[dict[str, str]], key: str) -> ModelDecision:
        """Call the model (its cache lookup missed, or there is no cache) and cache a valid answer under ``key``."""
        client = self.clients[spec.provider]
        prompt_tokens = completion_tokens = 0
        raw: str | None = None
        try:
            completion = client.complete(spec.model, messages, REQUEST_PARAMS)
            prompt_tokens, completion_tokens, raw = completion.prompt_tokens, completion.completion_tokens, \
                completion.content
            try:
                answer = parse_answer(completion.content)
            except InvalidOutput as problem:
                logger.info("%s gave invalid output (%s); one repair attempt", spec.key, problem)
                repaired = client.complete(spec.model, repair_messages(messages, completion.content, str(problem)),
                                           REQUEST_PARAMS)
                prompt_tokens += repaired.prompt_tokens
                completion_tokens += repaired.completion_tokens
                raw = repaired.content
                try:
                    answer = parse_answer(repaired.content)
                except InvalidOutput as final_problem:
                    return self._failed(spec, f"invalid output after one repair attempt: {final_problem}", raw,
                                        prompt_tokens, completion_tokens)
        except LLMRequestError as exc:
            return self._failed(spec, str(exc), raw, prompt_tokens, completion_tokens)
        cost = estimate_cost(self.prices, spec.key, prompt_tokens, completion_tokens)
        if self.cache is not None:
            self.cache.set(key, self._cache_value(answer, raw, prompt_tokens, completion_tokens, cost), self.cache_ttl)
        return ModelDecision(spec.key, answer.decision, answer.reason, answer.confidence, answer.picos, raw,
                             prompt_tokens, completion_tokens, cost, False, None)

    def _failed(self, spec: ModelSpec, error: str, raw: str | None, prompt_tokens: int,
                completion_tokens: int) -> ModelDecision:
        logger.warning("%s failed an item: %s", spec.key, error)
        return ModelDecision(spec.key, None, None, None, {}, raw, prompt_tokens, completion_tokens,
                             estimate_cost(self.prices, spec.key, prompt_tokens, completion_tokens), False, error)

    def _cache_value(self, answer: ScreeningAnswer, raw: str | None, prompt_tokens: int, completion_tokens: int,
                     cost: float) -> dict[str, Any]:
        return {"decision": answer.decision, "reason": answer.reason, "confidence": answer.confidence,
                "picos": answer.picos, "raw_response": raw, "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens, "cost": cost, "prompt_version": self.prompt_version}


def llm_cache_ttl(config: Mapping[str, Any] | Settings | None) -> float | None:
    """How long LLM answers are cached (``LLM_CACHE_TTL_SECONDS``; 0: forever, i.e. None)."""
    ttl = Settings.of(config).llm.cache_ttl
    return ttl if ttl > 0 else None


def open_llm_cache(config: Mapping[str, Any] | Settings | None, engine: Engine | None) -> Cache | None:
    """The process's cache for LLM answers (``CACHE_BACKEND``), or None when ``LLM_CACHE=off``."""
    settings = Settings.of(config)
    if not settings.llm.cache:
        return None
    return get_cache(settings, engine if settings.cache.backend != "memory" else None)


def close_llm_calls(pool: ThreadPoolExecutor, clients: Mapping[str, ChatClient], cache: Cache | None) -> None:
    """End a batch's LLM work (any kind): stop the call threads, close HTTP clients, persist cache counters."""
    pool.shutdown(wait=True)
    for client in clients.values():
        client.close()
    if cache is not None:
        try:
            cache.flush_counters()
        except Exception:
            logger.warning("could not persist cache counters", exc_info=True)


def chat_clients(snapshot: Mapping[str, Any], config: Mapping[str, Any] | Settings | None,
                 limits_engine: Engine | None = None) -> dict[str, ChatClient]:
    """One chat client per provider of a task's model snapshot, with the configured retry policy (any kind).
    With ``limits_engine`` and ``LLM_LIMITS_SCOPE=fleet`` the providers' limits are shared by the whole fleet
    through that database; without one each process limits itself."""
    if not snapshot.get("models"):
        raise NoModelsConfigured("the model snapshot names no models")
    settings = Settings.of(config)
    llm = settings.llm
    retry = RetryPolicy(max_attempts=llm.max_attempts, initial_wait=llm.retry_initial, max_wait=llm.retry_max,
                        jitter=llm.retry_jitter)
    fleet_wide = llm.limits_scope == "fleet" and limits_engine is not None
    clients: dict[str, ChatClient] = {}
    for entry in snapshot["models"]:
        provider = entry["provider"]
        if provider not in clients:
            provider_conf = provider_settings(provider, settings, entry.get("base_url"))
            limits = None
            if fleet_wide:
                limits = FleetLimits(limits_engine, limiter_name(provider, provider_conf.base_url),
                                     provider_conf.rpm, provider_conf.max_concurrency,
                                     lease_seconds=provider_conf.timeout + 30,
                                     wait_seconds=settings.engine.db_wait_seconds)
            clients[provider] = ChatClient(provider_conf, retry, limits=limits)
    return clients


def build_screener(snapshot: dict, config: Mapping[str, Any] | Settings | None, cache: Cache | None,
                   cache_prefix: str = LLM_CACHE_PREFIX,
                   cache_ttl: float | None = DEFAULT_LLM_CACHE_TTL_SECONDS,
                   limits_engine: Engine | None = None) -> Screener:
    """A Screener for a task's model snapshot: keys and limits from ``config`` (see :func:`chat_clients`),
    answers through ``cache`` (``open_llm_cache``; None: no cache) under ``cache_prefix`` for ``cache_ttl``."""
    models = [ModelSpec(m["provider"], m["model"]) for m in snapshot.get("models") or []]
    clients = chat_clients(snapshot, config, limits_engine)
    return Screener(models, clients, cache, price_table(Settings.of(config)),
                    snapshot.get("decision_rule") or "unanimous",
                    cache_ttl, snapshot.get("prompt_version") or PROMPT_VERSION, cache_prefix,
                    Settings.of(config).llm.prompt_max_chars)
