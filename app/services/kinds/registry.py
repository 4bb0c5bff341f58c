"""The task kind registry: ``task_type`` → ``TaskKind``. A new kind adds its module to ``KIND_MODULES``."""

from __future__ import annotations

import importlib
import logging
import threading

from app.services.kinds.base import TaskKind

logger = logging.getLogger(__name__)

#: modules that define and ``register`` a kind (imported on first use)
KIND_MODULES: tuple[str, ...] = (
    "app.services.kinds.title_abstract",
    "app.services.kinds.fulltext",
)

_kinds: dict[str, TaskKind] = {}
_loaded = False
_lock = threading.Lock()


class UnknownTaskKind(LookupError):
    """No kind is registered under this ``task_type``."""


def register(kind: TaskKind) -> TaskKind:
    """Make ``kind`` available under ``kind.name`` (called at the bottom of the kind's module)."""
    _kinds[kind.name] = kind
    return kind


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if not _loaded:
            for module in KIND_MODULES:
                importlib.import_module(module)
            _loaded = True


def get_kind(task_type: str) -> TaskKind:
    """The kind registered as ``task_type``; UnknownTaskKind otherwise."""
    _load()
    try:
        return _kinds[task_type]
    except KeyError:
        raise UnknownTaskKind(f"unknown task_type {task_type!r}") from None


def task_types() -> tuple[str, ...]:
    """Every registered ``task_type``, in registration order."""
    _load()
    return tuple(_kinds)
