"""The task kind interface: what the engine needs to know about one kind of LLM job, and nothing more.

The engine (``app/services/engine/``) owns batches, leases, checkpoints, the sweeper and the chord. A *task kind*
owns everything else: which items a task covers, how big a batch is, how one item is processed, which result
fields it fills and how its results are exported. ``title_abstract`` (``app/services/kinds/title_abstract.py``)
is the reference implementation.

How to write a kind
-------------------
1. Subclass ``TaskKind`` in a new module ``app/services/kinds/<name>.py``; set ``name`` (the ``task_type``
   stored on the task), ``chunk`` (a ``ChunkStrategy``), ``cache_prefix`` and ``cache_ttl_seconds``.
2. ``list_items(session, scope)``: the ordered item ids a new task covers (literature ids for literature kinds;
   any stable bigint id otherwise, e.g. a dataset row id). Raise ``KindInputError`` naming the bad parameter
   when ``scope.params`` is wrong, ``NothingToProcess`` when the list is empty. ``normalise_params`` validates
   and normalises the parameters stored on the task (``screening_tasks.params``) before ``list_items`` sees them.
3. ``open_processor(context)``: a per-batch ``ItemProcessor``. It may load what the batch needs in one query at
   open (``context.item_ids``, ``context.engine``); ``process(item_id)`` then does ONE item — every LLM call
   through ``context.cache`` under ``cache_prefix`` with ``cache_ttl_seconds`` — and returns a ``ResultRow``
   (or None when the item was deleted since the task started).
   ``process`` is called from ``concurrency`` threads at once and must NOT hold a database connection while it
   waits for an LLM (take a connection only for short statements, e.g. one cache ``get_many`` per item).
   An item whose output stays invalid is a ``ResultRow(status=FAILED, error=...)``; raise ``LLMUnavailable``
   (``app.llm.client``) only when the provider itself is down — the engine then retries the batch later.
4. ``result_fields(task)`` and ``export_columns(task)``: the ``fields`` names this kind fills and the export's
   columns (``ExportColumn(header, value(result, item))``); ``export_items`` yields ``(result, item)`` pairs.
5. Register it: add the module's dotted path to ``KIND_MODULES`` in ``app/services/kinds/registry.py`` and call
   ``register(MyKind())`` at the bottom of the module. Nothing in the engine changes.

The result row (one per item and task; unique on ``(task_id, item_id)``; written by the engine's checkpoint)
-----------------------------------------------------------------------------------------------------------
``ResultRow`` mirrors the columns of ``screening_results``:

- ``item_id`` (required), ``literature_id`` (literature kinds; NULL otherwise),
- ``status``: ``success`` | ``failed``; ``error`` (why it failed),
- ``decisions``: one dict per model, ``{model, decision, reason, confidence, error, ...}`` (kinds without a
  decision still list each model's call here: tokens, cost, raw response, error),
- ``llm_decision``: the machine's combined decision (``include`` | ``exclude`` | ``conflict`` | None). It is
  never changed by a human review; ``final_decision`` starts equal to it and becomes the human's decision,
- ``has_conflict``, ``manual_review_required``, ``exclusion_reason`` (full text: why excluded),
- ``fields``: per-field extraction output, ``{name: {"value": ..., "evidence": str, "page": int | None,
  "agreed": bool, "by_model": {model: value}, "verified": bool | None}}`` (None for kinds without fields),
- ``prompt_tokens``, ``completion_tokens``, ``cost_estimate`` (USD; 0 for cache hits).
The engine adds ``task_id``, ``batch_index``, ``duration_ms`` and ``created_at``.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from app.models.statuses import ResultStatus

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from app.cache import Cache
    from app.models import ScreeningResult, ScreeningTask

logger = logging.getLogger(__name__)

MIN_CHUNK_SIZE = 10
MAX_CHUNK_SIZE = 1000
MAX_BATCH_SECONDS = 900          # a batch holds at most 15 minutes of LLM time
MAX_REQUESTED_BATCH_SIZE = 5000  # the largest ``batch_size`` a request may ask for


class KindInputError(ValueError):
    """A task parameter of this kind is wrong (the API answers 422 naming ``field``)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class NothingToProcess(Exception):
    """The task would cover no items (the API answers 409)."""


def recommend_chunk_size(total: int, seconds_per_item: float, max_batch_seconds: float = MAX_BATCH_SECONDS,
                         default: int = MAX_CHUNK_SIZE) -> int:
    """Items per batch: at most ``default`` and ``max_batch_seconds`` of work, never more than ``total``,
    clamped to 10–1000."""
    size = default
    if seconds_per_item > 0:
        size = min(size, math.floor(max_batch_seconds / seconds_per_item))
    if total > 0:
        size = min(size, total)
    return max(MIN_CHUNK_SIZE, min(MAX_CHUNK_SIZE, size))


@dataclass(frozen=True)
class ChunkStrategy:
    """How a kind's tasks are cut into batches: a default size, capped by ``MAX_BATCH_SECONDS`` of LLM time."""

    batch_size: int
    seconds_per_item: float
    description: str = ""

    def size_for(self, total: int, requested: int | None = None) -> int:
        """Items per batch: ``requested`` if given, else the default capped by the time budget, clamped 10–1000."""
        if requested is not None:
            if requested < 1:
                raise KindInputError("batch_size", "batch_size must be at least 1")
            return requested
        return recommend_chunk_size(total, self.seconds_per_item, default=self.batch_size)


@dataclass(frozen=True)
class TaskScope:
    """What a new task is asked to cover: its owner, its project (None for non-literature kinds), its params."""

    owner_id: int
    project_id: int | None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ResultRow:
    """One processed item, as the checkpoint writes it into ``screening_results`` (see module docstring)."""

    item_id: int
    status: str = ResultStatus.SUCCESS
    literature_id: int | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    llm_decision: str | None = None
    final_decision: str | None = None
    has_conflict: bool = False
    manual_review_required: bool = False
    exclusion_reason: str | None = None
    fields: dict[str, dict[str, Any]] | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_estimate: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (the checkpoint's row payload)."""
        row = asdict(self)
        row["status"] = str(self.status)
        return row


@dataclass(frozen=True)
class BatchContext:
    """What a per-batch processor gets: the task's snapshot, the batch's items, config, database and cache."""

    task_id: int
    batch_index: int
    item_ids: list[int]               # the items still to do, in batch order
    project_id: int | None
    model_config: Mapping[str, Any]   # the snapshot taken at task start (``TaskKind.snapshot``)
    params: Mapping[str, Any]         # ``screening_tasks.params``
    config: Mapping[str, Any]         # the app's settings (keys, limits; never stored anywhere)
    engine: Engine                    # for short statements only; never held across an LLM call
    cache: Cache | None               # None when LLM_CACHE=off


class ItemProcessor(ABC):
    """Processes the items of one batch; ``process`` is called from ``concurrency`` threads at once."""

    #: items processed at the same time (the engine's thread count for this batch)
    concurrency: int = 1

    @abstractmethod
    def process(self, item_id: int) -> ResultRow | None:
        """Do one item: its LLM calls (through the cache) and its result row. Raise LLMUnavailable if down.

        None means the item no longer exists (deleted since the task started): it counts as done, with no row.
        """

    def estimated_cost(self, item_id: int) -> float | None:
        """An upper estimate (USD) of what processing ``item_id`` may cost, reserved against a task's budget
        before its calls. None: the engine reserves the dearest item cost the task has seen so far."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook: processors without resources keep the no-op
        """Release HTTP clients and threads (called once, when the batch ends)."""


@dataclass(frozen=True)
class ExportColumn:
    """One export column: its header and how to read its value from ``(result, item)``."""

    header: str
    value: Callable[[ScreeningResult, Any], Any]


class TaskKind(ABC):
    """A registered kind of task (see the module docstring for how to write one)."""

    #: the ``task_type`` stored on ``screening_tasks``
    name: str
    #: batch size and the expected LLM seconds per item
    chunk: ChunkStrategy
    #: cache key prefix of this kind's LLM answers, e.g. ``asl:llm:``
    cache_prefix: str
    #: how long cached LLM answers are kept (None: forever)
    cache_ttl_seconds: float | None = 30 * 24 * 3600

    @abstractmethod
    def list_items(self, session: Session, scope: TaskScope) -> list[int]:
        """The ordered item ids a new task covers; KindInputError / NothingToProcess when it cannot start."""

    def snapshot(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The model configuration a new task freezes (default: SCREENING_MODELS; NoModelsConfigured if none)."""
        from app.services.record_screening import model_config_snapshot

        return model_config_snapshot(config)

    def locked_config(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        """What a task of this kind is locked to (``screening_tasks.locked_config``): models, prompt version,
        decision rule; kinds add their parameters and prompt hash. A run compares it with its calibration's."""
        return {"models": [f"{m.get('provider')}:{m.get('model')}" for m in snapshot.get("models") or []],
                "prompt_version": snapshot.get("prompt_version"), "decision_rule": snapshot.get("decision_rule")}

    def normalise_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters stored on the task (validated; KindInputError names a bad one). Default: as given."""
        return dict(params)

    @abstractmethod
    def open_processor(self, context: BatchContext) -> ItemProcessor:
        """The processor of one batch (see ``ItemProcessor``)."""

    def result_fields(self, task: ScreeningTask) -> list[str]:
        """Names of the ``fields`` entries this kind's results carry (none by default)."""
        return []

    @abstractmethod
    def export_columns(self, task: ScreeningTask) -> list[ExportColumn]:
        """The CSV / XLSX export's columns for ``task``."""

    @abstractmethod
    def export_items(self, session: Session, task: ScreeningTask) -> Iterator[tuple[ScreeningResult, Any]]:
        """Every result of the task with its item (a ``Literature`` row for literature kinds), in item order."""
