"""Provider presets and per-provider settings (base URL, key, timeout, concurrency, requests per minute).

Presets: ``deepseek`` (DeepSeek API), ``qwen`` (Alibaba DashScope, OpenAI-compatible mode) and ``sim`` (the
local simulator; needs ``SIM_BASE_URL``). Any other provider name works when ``<NAME>_BASE_URL`` is set.
Every setting is ``<PROVIDER>_<SETTING>``, read by ``app.config`` (``LLMSettings.providers``):

| setting | default |
| --- | --- |
| ``<P>_BASE_URL`` | the preset URL (deepseek, qwen); required otherwise |
| ``<P>_API_KEY`` | none (the simulator needs none) |
| ``<P>_TIMEOUT_SECONDS`` | ``LLM_TIMEOUT_SECONDS`` (60) |
| ``<P>_MAX_CONCURRENCY`` | 8 (sim: 16) — requests in flight per process |
| ``<P>_RPM`` | 120 (sim: 60000; others 60) — requests per minute per process |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.config import Settings

PRESET_BASE_URLS = {
    "deepseek": "https://api.deepseek.com/v1",
    "qwen": "https://dashscope.aliyuncs.com/compatible-mode/v1",
}
DEFAULT_RPM = {"deepseek": 120, "qwen": 120, "sim": 60_000}
DEFAULT_CONCURRENCY = {"sim": 16}
FALLBACK_RPM = 60
FALLBACK_CONCURRENCY = 8


class ProviderNotConfigured(ValueError):
    """A provider without a preset and without ``<NAME>_BASE_URL``."""


@dataclass(frozen=True)
class ProviderSettings:
    """How to reach one provider; ``api_key`` is never printed (repr hides it)."""

    name: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    max_concurrency: int = FALLBACK_CONCURRENCY
    rpm: int = FALLBACK_RPM


def provider_base_url(name: str, config: Mapping[str, Any] | Settings | None) -> str:
    """The provider's base URL: ``<NAME>_BASE_URL``, else its preset; ProviderNotConfigured otherwise."""
    url = Settings.of(config).llm.provider(name).base_url or PRESET_BASE_URLS.get(name)
    if not url:
        raise ProviderNotConfigured(
            f"provider {name!r} has no preset: set {name.upper()}_BASE_URL to its OpenAI-compatible base URL"
        )
    return str(url).rstrip("/")


def provider_settings(name: str, config: Mapping[str, Any] | Settings | None,
                      base_url: str | None = None) -> ProviderSettings:
    """Settings of provider ``name`` (``base_url`` pins the URL, e.g. from a task's model snapshot)."""
    llm = Settings.of(config).llm
    overrides = llm.provider(name)
    return ProviderSettings(
        name=name,
        base_url=(base_url or provider_base_url(name, config)).rstrip("/"),
        api_key=overrides.api_key or None,
        timeout=overrides.timeout if overrides.timeout is not None else llm.timeout,
        max_concurrency=overrides.max_concurrency or DEFAULT_CONCURRENCY.get(name, FALLBACK_CONCURRENCY),
        rpm=overrides.rpm or DEFAULT_RPM.get(name, FALLBACK_RPM),
    )
