"""Which models screen: ``SCREENING_MODELS`` parsed into ``provider:model`` specs."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PROVIDER = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ModelSpec:
    """One screening model at one provider (``deepseek``, ``qwen``, ``sim`` or any ``<NAME>_BASE_URL``)."""

    provider: str
    model: str

    @property
    def key(self) -> str:
        """``provider:model``."""
        return f"{self.provider}:{self.model}"


def parse_screening_models(value: str) -> list[ModelSpec]:
    """Parse ``"deepseek:deepseek-chat,qwen:qwen-plus"``; raises ValueError naming the bad entry."""
    specs: list[ModelSpec] = []
    for raw in (value or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        provider, sep, model = entry.partition(":")
        provider, model = provider.strip().lower(), model.strip()
        if not sep or not model or not _PROVIDER.match(provider):
            raise ValueError(f"SCREENING_MODELS entry {entry!r} is not of the form provider:model")
        spec = ModelSpec(provider, model)
        if spec in specs:
            raise ValueError(f"SCREENING_MODELS entry {entry!r} is listed twice")
        specs.append(spec)
    return specs
