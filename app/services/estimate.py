"""What a screening run will cost before anything is spent: calls, tokens and USD from the actual records.

Prompt tokens come from the prompts the run would send (the real prompt built for every record, at about four
characters a token, the rate providers' tokenizers give for English text); completion tokens from the mean
answer length of earlier runs of the same models in this project when there are any, else a typical answer of
``DEFAULT_COMPLETION_TOKENS``; prices from the price table (``LLM_PRICES``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.llm.pricing import estimate_cost, price_table
from app.llm.prompts import build_messages
from app.models import Literature, Project
from app.services.record_screening import model_config_snapshot

CHARS_PER_TOKEN = 4
DEFAULT_COMPLETION_TOKENS = 80


def count_tokens(text: str) -> int:
    """Approximate tokens of ``text``."""
    return max(1, len(text) // CHARS_PER_TOKEN)


def _prompt_tokens(project: Project, record: Literature) -> int:
    messages = build_messages(project.picos or {}, project.inclusion_criteria, project.exclusion_criteria,
                              record.title, record.abstract)
    return count_tokens("\n".join(message["content"] for message in messages))


MEAN_COMPLETION_SQL = text("""
    SELECT avg((d ->> 'completion_tokens')::float), count(*)
    FROM screening_results r
    JOIN screening_tasks t ON t.id = r.task_id
    CROSS JOIN LATERAL jsonb_array_elements(r.decisions) AS d
    WHERE t.project_id = :project_id AND d ->> 'provider' = :provider AND d ->> 'model' = :model
      AND coalesce((d ->> 'cached')::boolean, false) = false AND (d ->> 'completion_tokens')::float > 0
""")


def _mean_completion_tokens(session: Session, project: Project, model_key: str) -> float | None:
    """Mean completion tokens per call of ``model_key`` in the project's earlier results (None if none)."""
    provider, _, model = model_key.partition(":")
    mean, count = session.execute(MEAN_COMPLETION_SQL,
                                  {"project_id": project.id, "provider": provider, "model": model}).one()
    return float(mean) if count else None


def estimate_screening(session: Session, project: Project, config: Mapping[str, Any]) -> dict[str, Any]:
    """The expected calls, tokens and cost of screening every record of the project with the configured models.

    Raises NoModelsConfigured like starting a run does.
    """
    snapshot = model_config_snapshot(config)
    prices = price_table(config)
    records = list(session.scalars(select(Literature).where(Literature.project_id == project.id)
                                   .order_by(Literature.id)))
    prompt_per_model = sum(_prompt_tokens(project, record) for record in records)
    per_model: list[dict[str, Any]] = []
    for model in snapshot["models"]:
        key = f"{model['provider']}:{model['model']}"
        history = _mean_completion_tokens(session, project, key)
        completion = round((history if history is not None else DEFAULT_COMPLETION_TOKENS) * len(records))
        per_model.append({
            "model": key, "calls": len(records), "prompt_tokens": prompt_per_model,
            "completion_tokens": completion,
            "completion_tokens_basis": "earlier runs" if history is not None else "typical answer",
            "cost_usd": estimate_cost(prices, key, prompt_per_model, completion),
        })
    return {
        "records": len(records),
        "calls": sum(m["calls"] for m in per_model),
        "prompt_tokens": sum(m["prompt_tokens"] for m in per_model),
        "completion_tokens": sum(m["completion_tokens"] for m in per_model),
        "cost_usd": round(sum(m["cost_usd"] for m in per_model), 6),
        "by_model": per_model,
        "assumptions": (f"about {CHARS_PER_TOKEN} characters a prompt token; every record screened once by every "
                        "model with no cache hits; repairs of invalid answers and retries not included"),
    }
