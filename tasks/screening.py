"""Celery tasks of a screening run: thin wrappers that take ids and call ``app.services.screening``.

- ``screen_batch(task_id, batch_index)``: claims the batch's lease and screens it from its cursor. A delivery
  that finds the batch held by another live delivery raises ``Ignore`` (no result is stored, so the chord
  cannot complete early); one that finds it finished returns normally (the chord may count it).
  Transient failures (``LLMUnavailable``, database disconnects) are retried by Celery with exponential backoff
  (60 s → 120 s → 240 s by default, ``SCREENING_RETRY_BACKOFF_SECONDS`` sets the base), resuming from the
  cursor; after the last retry the batch is marked failed and the task returns normally, so the chord's
  ``finalize_task`` still runs and reports ``failed``.
- ``finalize_task(task_id)``: the chord callback; idempotent.
- ``sweep()``: beat's safety net (lost messages, lost chord bookkeeping).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.exceptions import Ignore
from sqlalchemy.exc import DBAPIError, OperationalError

from app import task_names
from app.config import load_settings
from app.services import screening
from app.services.record_screening import LLMUnavailable

logger = logging.getLogger(__name__)

# the decorator needs the values when the module is imported: the worker's settings, from its environment
_ENGINE_SETTINGS = load_settings().engine
RETRY_BACKOFF_SECONDS = _ENGINE_SETTINGS.retry_backoff
MAX_RETRIES = _ENGINE_SETTINGS.max_retries
RETRYABLE = (LLMUnavailable, OperationalError)


def _retryable(exc: BaseException) -> bool:
    """Narrow: an unreachable LLM provider, or a lost / refused database connection."""
    if isinstance(exc, RETRYABLE):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def retry_countdown(retries: int) -> float:
    """Celery's exponential backoff without jitter: base, 2×base, 4×base … (capped at 16×base)."""
    base = int(max(1.0, RETRY_BACKOFF_SECONDS))
    return float(min(base * (2 ** retries), base * 16))


@shared_task(
    bind=True,
    name=task_names.SCREEN_BATCH,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=RETRYABLE,
    max_retries=MAX_RETRIES,
    retry_backoff=RETRY_BACKOFF_SECONDS,
    retry_backoff_max=RETRY_BACKOFF_SECONDS * 16,
    retry_jitter=False,
)
def screen_batch(self: Any, task_id: int, batch_index: int) -> dict[str, Any]:
    """Screen batch ``batch_index`` of task ``task_id`` from its cursor (see module docstring)."""
    try:
        outcome = screening.run_batch(task_id, batch_index)
    except screening.LeaseLost:
        logger.warning("batch %s/%s: lease lost mid-run; leaving it to the new holder", task_id, batch_index)
        raise Ignore() from None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if not _retryable(exc):
            logger.exception("batch %s/%s failed permanently", task_id, batch_index)
            screening.fail_batch(task_id, batch_index, error)
            return {"status": "failed", "task_id": task_id, "batch_index": batch_index, "error": error}
        if self.request.retries >= self.max_retries:
            screening.fail_batch(task_id, batch_index, f"gave up after {self.max_retries} retries: {error}")
            return {"status": "failed", "task_id": task_id, "batch_index": batch_index, "error": error}
        countdown = retry_countdown(self.request.retries)
        try:
            screening.release_batch(task_id, batch_index, countdown, error)
        except DBAPIError:
            logger.warning("batch %s/%s: could not release the lease; it will expire", task_id, batch_index)
        logger.warning("batch %s/%s: %s; retry %d in %.0f s", task_id, batch_index, error,
                       self.request.retries + 1, countdown)
        raise self.retry(exc=exc, countdown=countdown) from None
    if outcome.status == "busy":
        raise Ignore()
    return outcome.as_dict()


@shared_task(name=task_names.FINALIZE_TASK, acks_late=True, reject_on_worker_lost=True,
             autoretry_for=(OperationalError,), max_retries=5, retry_backoff=2)
def finalize_task(task_id: int) -> str | None:
    """The chord callback: the task's final status from its rows (idempotent)."""
    return screening.finalize_task(task_id)


@shared_task(name=task_names.SWEEP, ignore_result=True, time_limit=300)
def sweep() -> dict[str, Any]:
    """Re-send lost batches with their celery ids and finalize finished tasks."""
    return screening.sweep().as_dict()
