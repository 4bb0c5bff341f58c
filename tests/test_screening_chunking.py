"""Chunk strategies per task kind and the batch-size recommender."""

from __future__ import annotations

import pytest

from app.services.engine.runs import split_into_batches
from app.services.kinds import KindInputError, get_kind, task_types
from app.services.kinds.base import ChunkStrategy, recommend_chunk_size


def test_strategies_per_task_kind() -> None:
    assert "title_abstract" in task_types()
    strategy = get_kind("title_abstract").chunk
    assert (strategy.batch_size, strategy.seconds_per_item) == (100, 7.0)
    assert strategy.size_for(10_000) == 100
    assert strategy.size_for(10_000, requested=7) == 7
    assert strategy.size_for(40) == 40            # never bigger than the run
    with pytest.raises(KindInputError) as excinfo:
        strategy.size_for(10, requested=0)
    assert excinfo.value.field == "batch_size"
    # a slow kind's default is capped by the 15-minute budget
    assert ChunkStrategy(batch_size=500, seconds_per_item=30.0).size_for(10_000) == 30


@pytest.mark.parametrize(("total", "seconds", "expected"), [
    (10_000, 7.0, 128),     # 900 s / 7 s per record
    (10_000, 0.01, 1000),   # clamped to the maximum
    (10_000, 600.0, 10),    # clamped to the minimum
    (25, 1.0, 25),          # never bigger than the run
    (3, 1.0, 10),           # ... but not below the minimum either
    (500, 0.0, 500),
])
def test_recommend_chunk_size(total: int, seconds: float, expected: int) -> None:
    assert recommend_chunk_size(total, seconds) == expected
    assert recommend_chunk_size(10_000, 7.0, max_batch_seconds=70) == 10


def test_split_into_batches_keeps_order_and_every_id() -> None:
    ids = list(range(1, 26))
    chunks = split_into_batches(ids, 10)
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert [i for chunk in chunks for i in chunk] == ids
    with pytest.raises(ValueError):
        split_into_batches(ids, 0)
