"""Chunk strategies per task kind and the batch-size recommender."""

from __future__ import annotations

import pytest

from app.services.chunking import CHUNK_STRATEGIES, chunk_size_for, recommend_chunk_size, split_into_batches


def test_strategies_per_task_kind() -> None:
    sizes = {kind: strategy.batch_size for kind, strategy in CHUNK_STRATEGIES.items()}
    assert sizes == {"title_abstract": 100, "full_text": 50, "clinical_extraction": 50, "statistics": 5000}
    assert chunk_size_for("title_abstract") == 100
    assert chunk_size_for("title_abstract", requested=7) == 7


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
