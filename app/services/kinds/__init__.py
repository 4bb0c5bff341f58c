"""Task kinds: one registered ``TaskKind`` per ``task_type`` (see ``base.py`` for how to write one)."""

from app.services.kinds.base import (
    BatchContext,
    ChunkStrategy,
    ExportColumn,
    ItemProcessor,
    KindInputError,
    NothingToProcess,
    ResultRow,
    TaskKind,
    TaskScope,
)
from app.services.kinds.registry import UnknownTaskKind, get_kind, register, task_types

__all__ = [
    "BatchContext", "ChunkStrategy", "ExportColumn", "ItemProcessor", "KindInputError", "NothingToProcess",
    "ResultRow", "TaskKind", "TaskScope", "UnknownTaskKind", "get_kind", "register", "task_types",
]
