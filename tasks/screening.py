"""Celery tasks of a run (any task kind): thin wrappers that take ids and call ``app.services.engine``.

- ``screen_batch(task_id, batch_index)``: claims the batch's lease and processes it from its cursor. A delivery
  that finds the batch held by another live delivery raises ``Ignore`` (no result is stored, so the chord
  cannot complete early); one that finds it finished returns normally (the chord may count it).
  ONE retry policy, here and nowhere else: an LLM provider that stays down (``LLMUnavailable``) or a batch over
  its soft time limit is retried by Celery from its cursor, 60 s → 120 s → 240 s by default
  (``SCREENING_RETRY_BACKOFF_SECONDS``, ``SCREENING_MAX_RETRIES``); after the last retry the batch is marked
  failed and the task returns normally, so the chord's ``finalize_task`` still runs and reports ``failed``.
  A database outage is NOT retried here: the engine waits it out in place (``app/services/engine/waits.py``);
  if it outlasts the wait budget the delivery ends without a result and the sweeper re-sends the batch once its
  lease expires. Any other error fails the batch at once.
- ``finalize_task(task_id)``: the chord callback; idempotent.
- ``drift_check(task_id)``: the test–retest of a long run's fixed subset, sent once by the finalize that completes it.
- ``sweep()``: beat's safety net (lost or revoked messages, lost chord bookkeeping).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.exceptions import Ignore, SoftTimeLimitExceeded
from flask import current_app

from app import task_names
from app.config import load_settings
from app.llm.client import LLMUnavailable
from app.services import engine, maintenance
from app.services.engine import EngineContext

logger = logging.getLogger(__name__)

# The decorator needs the limits when the module is imported: the worker's settings, from its environment. A batch
# holds ≤ 15 minutes of LLM time by design; the limits leave room for a slow, retrying provider.
SCREEN_BATCH_SOFT_TIME_LIMIT = load_settings().engine.batch_soft_time_limit
SCREEN_BATCH_TIME_LIMIT = SCREEN_BATCH_SOFT_TIME_LIMIT + 300
# what Celery retries (the LLM ladder); see the module docstring for everything else
LADDER = (LLMUnavailable, SoftTimeLimitExceeded)


def _context() -> EngineContext:
    return engine.engine_context(current_app)


def _failed(task_id: int, batch_index: int, error: str) -> dict[str, Any]:
    return {"status": "failed", "task_id": task_id, "batch_index": batch_index, "error": error}


@shared_task(bind=True, name=task_names.SCREEN_BATCH, acks_late=True, reject_on_worker_lost=True,
             max_retries=None, soft_time_limit=SCREEN_BATCH_SOFT_TIME_LIMIT, time_limit=SCREEN_BATCH_TIME_LIMIT)
def screen_batch(self: Any, task_id: int, batch_index: int) -> dict[str, Any]:
    """Process batch ``batch_index`` of task ``task_id`` from its cursor (see module docstring)."""
    ctx = _context()
    try:
        outcome = engine.run_batch(ctx, task_id, batch_index)
    except engine.LeaseLost:
        logger.warning("batch %s/%s: lease lost mid-run; leaving it to the new holder", task_id, batch_index)
        raise Ignore() from None
    except engine.DatabaseUnavailable as exc:
        logger.error("batch %s/%s: %s; the sweeper re-sends it when its lease expires", task_id, batch_index, exc)
        raise Ignore() from None
    except LADDER as exc:
        return _retry_or_fail(self, ctx, task_id, batch_index, exc)
    except Exception as exc:
        logger.exception("batch %s/%s failed permanently", task_id, batch_index)
        error = f"{type(exc).__name__}: {exc}"
        engine.fail_batch(ctx, task_id, batch_index, error)
        return _failed(task_id, batch_index, error)
    if outcome.status == "busy":
        raise Ignore()
    return outcome.as_dict()


def _retry_or_fail(task: Any, ctx: EngineContext, task_id: int, batch_index: int,
                   exc: BaseException) -> dict[str, Any]:
    """The retry ladder: free the lease and retry later, or fail the batch after the last retry."""
    error = f"{type(exc).__name__}: {exc}"
    retries = task.request.retries
    if retries >= ctx.settings.max_retries:
        engine.fail_batch(ctx, task_id, batch_index, f"gave up after {retries} retries: {error}")
        return _failed(task_id, batch_index, error)
    countdown = ctx.settings.retry_countdown(retries)
    try:
        engine.release_batch(ctx, task_id, batch_index, countdown, error)
    except engine.DatabaseUnavailable:
        logger.warning("batch %s/%s: could not release the lease; it will expire", task_id, batch_index)
    logger.warning("batch %s/%s: %s; retry %d in %.0f s", task_id, batch_index, error, retries + 1, countdown)
    raise task.retry(exc=exc, countdown=countdown)


@shared_task(name=task_names.FINALIZE_TASK, acks_late=True, reject_on_worker_lost=True, soft_time_limit=600,
             time_limit=660)
def finalize_task(task_id: int) -> str | None:
    """The chord callback: the task's final status from its rows (idempotent; waits out database outages)."""
    return engine.finalize_task(_context(), task_id)


@shared_task(name=task_names.DRIFT_CHECK, acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600,
             time_limit=3900)
def drift_check(task_id: int) -> dict[str, Any] | None:
    """Re-screen a finished run's fixed subset without the cache; store the test–retest report (runs once)."""
    from app.services.drift import run_drift_check

    return run_drift_check(_context(), task_id)


@shared_task(name=task_names.SWEEP, ignore_result=True, soft_time_limit=240, time_limit=300)
def sweep() -> dict[str, Any]:
    """Re-send lost batches and finalize finished tasks (and note the run: beat's heartbeat)."""
    ctx = _context()
    report = engine.sweep(ctx).as_dict()
    maintenance.record_run(ctx.engine, task_names.SWEEP, ", ".join(f"{key} {value}" for key, value in report.items()))
    return report
