"""Screening records over real HTTP against the simulator subprocess, with the real PostgreSQL cache."""

from __future__ import annotations

import csv
import gc
import logging
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.cache import PostgresCache
from app.extensions import db
from app.llm.client import LLMUnavailable, shared_ssl_context
from app.services.record_screening import (
    PROMPT_VERSION,
    Criteria,
    NoModelsConfigured,
    RecordScreening,
    RecordText,
    Screener,
    build_screener,
    model_config_snapshot,
    open_llm_cache,
)
from tests.support.processes import ProcessGroup
from tests.support.simulator import Simulator, start_simulator

DATASET = Path(__file__).resolve().parents[1] / "app" / "data" / "nagtegaal_2019_nudging.csv"
CRITERIA = Criteria({"P": "healthcare professionals", "I": "nudges", "O": "evidence-based practice"})
SECRET = "sk-test-9f8e7d6c5b4a-do-not-leak"


def records(n: int, offset: int = 0) -> list[RecordText]:
    with DATASET.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[offset:offset + n]
    return [RecordText(int(r["record_id"]), r["title"], r["abstract"]) for r in rows]


def sim_config(simulator: Simulator, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "SCREENING_MODELS": "sim:sim-a,sim:sim-b",
        "SIM_BASE_URL": simulator.base_url,
        "CACHE_BACKEND": "postgres",
        "LLM_RETRY_INITIAL_SECONDS": 0.02,
        "LLM_RETRY_MAX_SECONDS": 0.2,
        "LLM_RETRY_JITTER_SECONDS": 0.05,
        "SIM_TIMEOUT_SECONDS": 10,
    }
    config.update(overrides)
    return config


def screen_all(app: Flask, config: dict[str, Any], items: list[RecordText]) -> list[RecordScreening]:
    """Screen ``items`` with a fresh Screener, several records at once like the engine does."""
    from concurrent.futures import ThreadPoolExecutor

    merged = {**app.config, **config}
    with app.app_context():
        screener = build_screener(model_config_snapshot(merged), merged, open_llm_cache(merged, db.engine))
        try:
            with ThreadPoolExecutor(max_workers=min(8, screener.concurrency)) as pool:
                return list(pool.map(lambda r: screener.screen(CRITERIA, r), items))
        finally:
            screener.close()


@pytest.fixture
def simulator(processes: ProcessGroup) -> Iterator[Simulator]:
    yield start_simulator(processes, latency=0.01)


def test_snapshot_names_models_and_prompt_version_but_never_a_key(simulator: Simulator) -> None:
    snapshot = model_config_snapshot(sim_config(simulator, SIM_API_KEY=SECRET, DEEPSEEK_API_KEY=SECRET,
                                                SCREENING_MODELS="sim:sim-a,deepseek:deepseek-chat"))
    assert snapshot["prompt_version"] == PROMPT_VERSION
    assert snapshot["decision_rule"] == "unanimous"
    assert snapshot["models"] == [
        {"provider": "sim", "model": "sim-a", "base_url": simulator.base_url},
        {"provider": "deepseek", "model": "deepseek-chat", "base_url": "https://api.deepseek.com/v1"},
    ]
    assert SECRET not in repr(snapshot)


@pytest.mark.parametrize("models, message", [
    ("", "SCREENING_MODELS is empty"),
    ("sim-a", "'sim-a' is not of the form provider:model"),
    ("acme:model-x", "ACME_BASE_URL"),
])
def test_unusable_model_configuration_is_refused(models: str, message: str, monkeypatch) -> None:
    monkeypatch.delenv("SCREENING_MODELS", raising=False)
    monkeypatch.delenv("ACME_BASE_URL", raising=False)
    with pytest.raises(NoModelsConfigured, match=message):
        model_config_snapshot({"SCREENING_MODELS": models})


def test_records_get_decisions_and_costs(app: Flask, simulator: Simulator) -> None:
    results = screen_all(app, sim_config(simulator, LLM_PRICES='{"sim:sim-a": {"input": 1.0, "output": 2.0}}'),
                         records(12))
    for result in results:
        assert not result.failed and result.error is None
        assert result.final_decision in {"include", "exclude", "conflict"}
        assert [d.model for d in result.decisions] == ["sim:sim-a", "sim:sim-b"]
        assert all(d.decision in {"include", "exclude", "uncertain"} and d.reason for d in result.decisions)
        assert result.prompt_tokens > 0 and result.completion_tokens > 0
        sim_a, sim_b = result.decisions
        assert sim_a.cost == pytest.approx((sim_a.prompt_tokens * 1.0 + sim_a.completion_tokens * 2.0) / 1e6)
        assert sim_b.cost == 0.0
        agree = sim_a.decision == sim_b.decision and sim_a.decision != "uncertain"
        assert result.has_conflict is (not agree)
        assert (result.final_decision == "conflict") is (not agree)
    assert simulator.stats()["calls_by_model"] == {"sim-a": 12, "sim-b": 12}


def test_second_screening_of_the_same_records_makes_no_new_calls(app: Flask, simulator: Simulator,
                                                                 database_url: str) -> None:
    items = records(10, offset=100)
    first = screen_all(app, sim_config(simulator), items)
    calls = simulator.stats()["calls_total"]
    assert calls == 20
    second = screen_all(app, sim_config(simulator), items)
    assert simulator.stats()["calls_total"] == calls
    assert [r.final_decision for r in second] == [r.final_decision for r in first]
    assert all(d.cached and d.cost == 0 and d.prompt_tokens == 0 for r in second for d in r.decisions)
    assert all(not d.cached for r in first for d in r.decisions)
    from sqlalchemy import create_engine

    engine = create_engine(database_url)          # another process's view of the counters
    try:
        stats = PostgresCache(engine).stats()
    finally:
        engine.dispose()
    assert stats["by_prefix"]["asl:llm:"]["total"] == 20
    assert stats["hits"] >= 20 and stats["misses"] >= 20


def test_cache_off_pays_again(app: Flask, simulator: Simulator) -> None:
    items = records(3, offset=200)
    screen_all(app, sim_config(simulator, LLM_CACHE="off"), items)
    screen_all(app, sim_config(simulator, LLM_CACHE="off"), items)
    assert simulator.stats()["calls_total"] == 12


def test_memory_backend_also_caches(app: Flask, simulator: Simulator) -> None:
    items = records(3, offset=300)
    screen_all(app, sim_config(simulator, CACHE_BACKEND="memory"), items)
    screen_all(app, sim_config(simulator, CACHE_BACKEND="memory"), items)
    assert simulator.stats()["calls_total"] == 6


def test_error_storm_every_record_still_gets_a_decision_within_the_rate_limit(
        app: Flask, processes: ProcessGroup) -> None:
    storm = start_simulator(processes, latency=0.01, error_rate=0.3, rate_limit_rate=0.2, retry_after=0.2, seed=11)
    rpm = 600  # 10 requests a second
    results = screen_all(app, sim_config(storm, SIM_RPM=rpm, LLM_MAX_ATTEMPTS=30), records(20, offset=400))
    assert all(not r.failed and r.final_decision in {"include", "exclude", "conflict"} for r in results)
    stats = storm.stats(window=2.0)
    assert stats["responses_by_status"]["200"] == 40
    assert stats["responses_by_status"]["500"] > 0 and stats["responses_by_status"]["429"] > 0
    # request starts are spaced 60/rpm s apart: at most 2 s * 10/s + 1 in any 2 s (+1 for arrival jitter)
    assert stats["max_calls_in_window"] <= 2 * rpm / 60 + 2


def test_malformed_output_is_repaired_once(app: Flask, processes: ProcessGroup) -> None:
    simulator = start_simulator(processes, malformed_rate=1.0, malformed_repairable=True)
    results = screen_all(app, sim_config(simulator), records(5, offset=500))
    assert all(not r.failed and r.final_decision for r in results)
    stats = simulator.stats()
    assert stats["calls_total"] == 20 and stats["malformed_total"] == 10   # one repair per model and record


def test_output_that_stays_invalid_is_a_failed_item_with_the_reason(app: Flask, processes: ProcessGroup) -> None:
    simulator = start_simulator(processes, malformed_rate=1.0)
    items = records(4, offset=600)
    results = screen_all(app, sim_config(simulator), items)
    for result in results:
        assert result.failed and result.final_decision is None
        assert "invalid output after one repair attempt: not JSON" in result.error
        assert all(d.decision is None and d.raw_response and d.error for d in result.decisions)
        assert result.prompt_tokens > 0        # paid for, so counted
    assert simulator.stats()["calls_total"] == 16          # exactly one repair, then given up
    screen_all(app, sim_config(simulator), items)           # failures are not cached: a retry asks again
    assert simulator.stats()["calls_total"] == 32


def test_timeouts_are_retried(app: Flask, processes: ProcessGroup) -> None:
    simulator = start_simulator(processes, latency=0.05, latency_jitter=0.6, seed=5)
    items = records(6, offset=700)
    results = screen_all(app, sim_config(simulator, SIM_TIMEOUT_SECONDS=0.35, LLM_MAX_ATTEMPTS=40), items)
    assert all(not r.failed and r.final_decision for r in results)
    assert simulator.stats()["calls_total"] > 12           # some calls timed out and were made again


def test_a_provider_that_stays_down_raises_llm_unavailable_without_leaking_the_key(
        app: Flask, processes: ProcessGroup, caplog: pytest.LogCaptureFixture) -> None:
    simulator = start_simulator(processes, latency=1.5)
    caplog.set_level(logging.DEBUG)
    config = sim_config(simulator, SIM_API_KEY=SECRET, SIM_TIMEOUT_SECONDS=0.2, LLM_MAX_ATTEMPTS=2)
    with pytest.raises(LLMUnavailable, match="timeout") as excinfo:
        screen_all(app, config, records(1, offset=800))
    assert "after 2 attempts" in str(excinfo.value)
    assert SECRET not in str(excinfo.value) and SECRET not in repr(excinfo.value)
    assert SECRET not in caplog.text
    merged = {**app.config, **config}
    with app.app_context():
        screener = build_screener(model_config_snapshot(merged), merged, open_llm_cache(merged, db.engine))
        try:
            assert SECRET not in repr(screener.clients["sim"].provider)
        finally:
            screener.close()


def test_refused_requests_are_failed_items_and_redacted(app: Flask, simulator: Simulator) -> None:
    # a base URL the simulator has no route for answers 404: not transient, so a failed item (not a retry)
    config = sim_config(simulator, SIM_BASE_URL=simulator.base_url + "/nowhere", SIM_API_KEY=SECRET)
    results = screen_all(app, config, records(1, offset=900))
    assert results[0].failed and "HTTP 404" in results[0].error
    assert SECRET not in results[0].error


def test_the_title_abstract_kind_screens_a_record_with_the_project_and_app_config(
        app: Flask, simulator: Simulator, project_id: int) -> None:
    from app.models import Literature
    from app.services.kinds import BatchContext, get_kind

    config = {**app.config, **sim_config(simulator)}
    with app.app_context():
        session = db.session()
        literature = Literature(project_id=project_id, title=records(1)[0].title, abstract=records(1)[0].abstract,
                                source_format="json", dedup_key="x")
        session.add(literature)
        session.commit()
        context = BatchContext(task_id=0, batch_index=0, item_ids=[literature.id], project_id=project_id,
                               model_config=model_config_snapshot(config), params={}, config=config,
                               engine=db.engine, cache=open_llm_cache(config, db.engine))
        processor = get_kind("title_abstract").open_processor(context)
        try:
            row = processor.process(literature.id)
            assert processor.process(literature.id + 1000) is None  # not in the batch (deleted): nothing to record
        finally:
            processor.close()
    assert row is not None and row.status == "success" and row.literature_id == literature.id
    assert row.final_decision in {"include", "exclude", "conflict"} and row.llm_decision == row.final_decision
    assert [d["model"] for d in row.decisions] == ["sim:sim-a", "sim:sim-b"]


def test_a_closed_screener_is_freed_at_once_and_no_client_builds_a_tls_context(simulator: Simulator) -> None:
    """A pool child builds a screener, with an HTTP client per provider, for every batch. What a batch leaves
    behind must go as soon as it is dropped, not at the next full garbage collection, and no client may build a
    TLS context of its own: each is about 0.8 MB of OpenSSL memory the collector cannot see, and a context per
    client made a pool child's RSS grow with every batch."""
    config = sim_config(simulator, SCREENING_MODELS="sim:sim-a,other:sim-b", OTHER_BASE_URL=simulator.base_url,
                        CACHE_BACKEND="memory")
    gc.collect()
    gc.disable()
    try:
        screener = build_screener(model_config_snapshot(config), config, open_llm_cache(config, None))
        result = screener.screen(CRITERIA, records(1)[0])
        clients = list(screener.clients.values())
        assert len(clients) == 2
        assert all(c._http._transport._pool._ssl_context is shared_ssl_context() for c in clients)
        refs = [weakref.ref(screener)] + [weakref.ref(c) for c in clients] + [weakref.ref(c._http) for c in clients]
        screener.close()
        del screener, clients
        alive = [ref() for ref in refs if ref() is not None]
    finally:
        gc.enable()
    assert not result.failed
    assert alive == []


def test_screener_concurrency_is_bounded_by_the_providers(simulator: Simulator) -> None:
    config = sim_config(simulator, SIM_MAX_CONCURRENCY=3, CACHE_BACKEND="memory")
    screener: Screener = build_screener(model_config_snapshot(config), config, open_llm_cache(config, None))
    try:
        assert screener.concurrency == 3
    finally:
        screener.close()


def test_waits_honour_retry_after_and_back_off() -> None:
    from tenacity import RetryCallState, Retrying

    from app.llm.client import RetryPolicy, TransientLLMError, _WaitHonouringRetryAfter, parse_retry_after

    wait = _WaitHonouringRetryAfter(RetryPolicy(initial_wait=0.1, max_wait=5, jitter=0))
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = 1
    state.set_exception((TransientLLMError, TransientLLMError("429", retry_after=3.0), None))
    assert wait(state) == 3.0
    state.outcome = None
    state.set_exception((TransientLLMError, TransientLLMError("500"), None))
    state.attempt_number = 4
    assert wait(state) == pytest.approx(0.8)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_decision_rule() -> None:
    from app.llm.decision import combine

    assert combine(["include", "include"]).final_decision == "include"
    assert combine(["exclude", "exclude"]).final_decision == "exclude"
    outcome = combine(["include", "exclude"])
    assert (outcome.final_decision, outcome.has_conflict, outcome.manual_review_required) == ("conflict", True, True)
    assert combine(["uncertain", "uncertain"]).final_decision == "conflict"
    majority = combine(["include", "include", "exclude"], "majority")
    assert (majority.final_decision, majority.has_conflict, majority.manual_review_required) == (
        "include", True, False)
    assert combine(["include", "exclude", "uncertain"], "majority").final_decision == "conflict"
    with pytest.raises(ValueError):
        combine(["include"], "coin-flip")


def test_answer_validation() -> None:
    from app.llm.prompts import InvalidOutput, parse_answer

    good = '{"decision": "Include", "reason": "fits", "confidence": 0.9, "picos": {"p": "match"}}'
    assert parse_answer("```json\n" + good + "\n```").decision == "include"
    assert parse_answer(good).picos == {"P": "match"}
    for bad, problem in [
        ('{"decision": "maybe", "reason": "x", "confidence": 0.5}', "decision must be one of"),
        ('{"decision": "exclude", "reason": "", "confidence": 0.5}', "reason"),
        ('{"decision": "exclude", "reason": "x", "confidence": 7}', "confidence"),
        ('["include"]', "not a JSON object"),
        ("include", "not JSON"),
    ]:
        with pytest.raises(InvalidOutput, match=problem):
            parse_answer(bad)


def test_an_unreachable_provider_raises_llm_unavailable(app: Flask) -> None:
    import socket

    with socket.socket() as probe:          # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {"SCREENING_MODELS": "sim:sim-a", "SIM_BASE_URL": f"http://127.0.0.1:{port}/v1",
              "LLM_CACHE": "off", "LLM_MAX_ATTEMPTS": 3, "LLM_RETRY_INITIAL_SECONDS": 0.01,
              "LLM_RETRY_MAX_SECONDS": 0.05, "LLM_RETRY_JITTER_SECONDS": 0.01, "SIM_API_KEY": SECRET}
    with pytest.raises(LLMUnavailable, match="connection error") as excinfo:
        screen_all(app, config, records(1))
    assert SECRET not in str(excinfo.value)
