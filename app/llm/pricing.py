"""Estimated cost of a call from its token usage and a price table per model (USD per million tokens).

The defaults are list prices at the time of writing (estimates only; providers change them). Override or
extend with ``LLM_PRICES``, a JSON object ``{"provider:model": {"input": USD, "output": USD}}`` (per 1M tokens),
validated by ``app.config``. Unknown models cost 0 and are logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from app.config import Settings, price_overrides

logger = logging.getLogger(__name__)

DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "deepseek:deepseek-chat": {"input": 0.28, "output": 0.42},
    "deepseek:deepseek-reasoner": {"input": 0.28, "output": 0.42},
    "qwen:qwen-plus": {"input": 0.40, "output": 1.20},
    "qwen:qwen-turbo": {"input": 0.05, "output": 0.20},
    "qwen:qwen-max": {"input": 1.60, "output": 6.40},
    "qwen:qwen-flash": {"input": 0.05, "output": 0.40},
}
_warned: set[str] = set()


def price_table(config: Mapping[str, Any] | Settings | None) -> dict[str, dict[str, float]]:
    """The default prices updated with ``LLM_PRICES``."""
    table = {k: dict(v) for k, v in DEFAULT_PRICES.items()}
    raw = Settings.of(config).llm.prices
    if raw:
        table.update(price_overrides(raw))
    return table


def upper_cost(table: Mapping[str, Mapping[str, float]], model_keys: list[str], messages: list[dict[str, str]],
               max_tokens: int) -> float:
    """An upper estimate (USD) of one call with ``messages`` to each model: the prompt at about four characters a
    token plus a quarter (tokenizers differ), and an answer of ``max_tokens`` (the most a call may return). What a
    budget reserves before the calls; a repair call after an invalid answer is not included."""
    prompt_tokens = int(sum(len(m.get("content") or "") for m in messages) / 4 * 1.25) + 16
    return sum(estimate_cost(table, key, prompt_tokens, max_tokens) for key in model_keys)


def estimate_cost(table: Mapping[str, Mapping[str, float]], model_key: str, prompt_tokens: int,
                  completion_tokens: int) -> float:
    """USD for one call; 0 for models without a price (simulator, unknown)."""
    price = table.get(model_key)
    if price is None:
        if model_key not in _warned and not model_key.startswith("sim:"):
            _warned.add(model_key)
            logger.warning("no price for %s: its cost is counted as 0 (set LLM_PRICES)", model_key)
        return 0.0
    return round((prompt_tokens * price["input"] + completion_tokens * price["output"]) / 1_000_000, 8)
