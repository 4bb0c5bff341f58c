"""How a screening run is cut into batches: one chunk strategy per task kind, and a size recommender.

A batch is the unit of delivery, lease and retry. It should hold at most ~15 minutes of LLM time (so a lost
batch costs little and a deploy does not wait long), and not so few items that broker and bookkeeping costs
show. ``batch_size`` in a request overrides the strategy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_CHUNK_SIZE = 10
MAX_CHUNK_SIZE = 1000
MAX_BATCH_SECONDS = 900
MAX_REQUESTED_BATCH_SIZE = 5000


@dataclass(frozen=True)
class ChunkStrategy:
    """Default batch size of a task kind and its expected LLM seconds per item."""

    task_type: str
    batch_size: int
    seconds_per_item: float
    description: str


CHUNK_STRATEGIES: dict[str, ChunkStrategy] = {
    strategy.task_type: strategy
    for strategy in (
        ChunkStrategy("title_abstract", 100, 7.0, "title/abstract screening by two models"),
        ChunkStrategy("full_text", 50, 15.0, "full-text 12-field extraction"),
        ChunkStrategy("clinical_extraction", 50, 15.0, "field extraction from clinical records"),
        ChunkStrategy("statistics", 5000, 0.01, "statistics over records (no LLM calls)"),
    )
}

# Task kinds the engine can run today (the others have strategies ready for when their screeners exist).
RUNNABLE_TASK_TYPES = ("title_abstract",)


def recommend_chunk_size(total: int, seconds_per_item: float, max_batch_seconds: float = MAX_BATCH_SECONDS) -> int:
    """Items per batch so a batch holds at most ``max_batch_seconds`` of work, clamped to 10–1000."""
    if seconds_per_item <= 0:
        size = MAX_CHUNK_SIZE
    else:
        size = math.floor(max_batch_seconds / seconds_per_item)
    if total > 0:
        size = min(size, total)
    return max(MIN_CHUNK_SIZE, min(MAX_CHUNK_SIZE, size))


def chunk_size_for(task_type: str, requested: int | None = None) -> int:
    """The batch size of a run: the request's ``batch_size`` if given, else the task kind's strategy."""
    if requested is not None:
        return requested
    return CHUNK_STRATEGIES[task_type].batch_size


def split_into_batches(ids: list[int], size: int) -> list[list[int]]:
    """``ids`` in order, cut into consecutive chunks of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return [ids[start:start + size] for start in range(0, len(ids), size)]
