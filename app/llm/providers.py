"""Provider presets and per-provider settings (base URL, key, timeout, concurrency, requests per minute).

Presets: ``deepseek`` (DeepSeek API), ``qwen`` (Alibaba DashScope, OpenAI-compatible mode) and ``sim`` (the
local simulator; needs ``SIM_BASE_URL``). Any other provider name works when ``<NAME>_BASE_URL`` is set.
Every setting is ``<PROVIDER>_<SETTING>`` in the Flask config or the environment:

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

from app.settings import float_setting, int_setting, setting

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


def provider_base_url(name: str, config: Mapping[str, Any] | None) -> str:
    """The provider's base URL: ``<NAME>_BASE_URL``, else its preset; ProviderNotConfigured otherwise."""
    url = setting(config, f"{name.upper()}_BASE_URL", PRESET_BASE_URLS.get(name))
    if not url:
        raise ProviderNotConfigured(
            f"provider {name!r} has no preset: set {name.upper()}_BASE_URL to its OpenAI-compatible base URL"
        )
    return str(url).rstrip("/")


def provider_settings(name: str, config: Mapping[str, Any] | None, base_url: str | None = None) -> ProviderSettings:
    """Settings of provider ``name`` (``base_url`` pins the URL, e.g. from a task's model snapshot)."""
    prefix = name.upper()
    timeout = float_setting(config, f"{prefix}_TIMEOUT_SECONDS", float_setting(config, "LLM_TIMEOUT_SECONDS", 60.0))
    concurrency = int_setting(config, f"{prefix}_MAX_CONCURRENCY", DEFAULT_CONCURRENCY.get(name, FALLBACK_CONCURRENCY))
    rpm = int_setting(config, f"{prefix}_RPM", DEFAULT_RPM.get(name, FALLBACK_RPM))
    if timeout <= 0 or concurrency < 1 or rpm < 1:
        raise ValueError(f"{prefix}_TIMEOUT_SECONDS, {prefix}_MAX_CONCURRENCY and {prefix}_RPM must be positive")
    api_key = setting(config, f"{prefix}_API_KEY")
    return ProviderSettings(
        name=name,
        base_url=(base_url or provider_base_url(name, config)).rstrip("/"),
        api_key=str(api_key) if api_key else None,
        timeout=timeout,
        max_concurrency=concurrency,
        rpm=rpm,
    )
