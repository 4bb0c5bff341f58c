"""The LLM simulator as a real HTTP server: the official openai client, stats, knobs and determinism."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from app.llm.prompts import build_messages, parse_answer
from tests.support.processes import ProcessGroup
from tests.support.simulator import Simulator, start_simulator

PICOS = {"P": "healthcare professionals", "I": "nudges", "O": "evidence-based practice"}
RELEVANT = ("Computerised reminders to physicians to improve guideline adherence: a cluster randomised trial",
            "Electronic alerts and reminders were shown to physicians and nurses; adherence to guidelines rose.")
IRRELEVANT = ("Dietary fibre intake and bowel habits in adolescents",
              "We surveyed adolescents about their diet and their bowel habits in three schools.")


@pytest.fixture
def simulator(processes: ProcessGroup) -> Iterator[Simulator]:
    yield start_simulator(processes, latency=0.01)


def test_official_openai_client_works_against_the_simulator(simulator: Simulator) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=simulator.base_url, api_key="sk-simulator-test", max_retries=0)
    completion = client.chat.completions.create(
        model="model-a", messages=build_messages(PICOS, None, None, *RELEVANT), temperature=0,
        response_format={"type": "json_object"},
    )
    answer = parse_answer(completion.choices[0].message.content)
    assert answer.decision == "include"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert completion.model == "model-a"
    assert [m.id for m in client.models.list()] == ["model-a", "model-b"]


def test_decisions_are_deterministic_and_follow_relevance(simulator: Simulator) -> None:
    def ask(model: str, record: tuple[str, str]) -> dict:
        response = httpx.post(f"{simulator.base_url}/chat/completions", timeout=10, json={
            "model": model, "messages": build_messages(PICOS, None, None, *record)})
        response.raise_for_status()
        return json.loads(response.json()["choices"][0]["message"]["content"])

    first = ask("model-a", RELEVANT)
    assert first == ask("model-a", RELEVANT)
    assert first["decision"] == "include"
    assert ask("model-b", IRRELEVANT)["decision"] == "exclude"
    assert set(first["picos"]) == {"P", "I", "C", "O", "S"}


def test_stats_count_every_request_per_model_including_errors(processes: ProcessGroup) -> None:
    simulator = start_simulator(processes, error_rate=1.0)
    for model in ("model-a", "model-a", "model-b"):
        response = httpx.post(f"{simulator.base_url}/chat/completions", timeout=10, json={
            "model": model, "messages": [{"role": "user", "content": "Title: x"}]})
        assert response.status_code == 500
    stats = simulator.stats()
    assert stats["calls_total"] == 3
    assert stats["calls_by_model"] == {"model-a": 2, "model-b": 1}
    assert stats["responses_by_status"] == {"500": 3}
    simulator.reset()
    assert simulator.stats()["calls_total"] == 0


def test_rate_limit_answers_carry_retry_after(processes: ProcessGroup) -> None:
    simulator = start_simulator(processes, rate_limit_rate=1.0, retry_after=0.25)
    response = httpx.post(f"{simulator.base_url}/chat/completions", timeout=10, json={
        "model": "model-a", "messages": [{"role": "user", "content": "Title: x"}]})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "0.25"


def test_malformed_output_is_not_json(processes: ProcessGroup) -> None:
    simulator = start_simulator(processes, malformed_rate=1.0)
    response = httpx.post(f"{simulator.base_url}/chat/completions", timeout=10, json={
        "model": "model-a", "messages": build_messages(PICOS, None, None, *RELEVANT)})
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.json()["choices"][0]["message"]["content"])
    assert simulator.stats()["malformed_total"] == 1


def test_bad_request_is_a_400(simulator: Simulator) -> None:
    response = httpx.post(f"{simulator.base_url}/chat/completions", timeout=10, json={"messages": []})
    assert response.status_code == 400
    assert "invalid request" in response.json()["error"]["message"]


def test_cli_refuses_rates_outside_0_to_1() -> None:
    from click.testing import CliRunner

    from app.cli import main

    result = CliRunner().invoke(main, ["llm-simulator", "--error-rate", "1.5"])
    assert result.exit_code != 0
    assert "--error-rate must be between 0 and 1" in result.output
