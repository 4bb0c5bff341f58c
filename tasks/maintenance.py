"""Beat's maintenance tasks: thin wrappers around ``app.services.maintenance`` and the broker's housekeeping."""

from __future__ import annotations

import logging

from celery import shared_task

from app import task_names
from app.extensions import db
from app.services import maintenance
from tasks.broker import housekeeping

logger = logging.getLogger(__name__)


@shared_task(name=task_names.CLEAN_CACHE, ignore_result=True, soft_time_limit=240, time_limit=300)
def clean_cache() -> int:
    """Delete expired cache rows in bounded batches."""
    removed = maintenance.clean_cache(db.engine)
    maintenance.record_run(db.engine, task_names.CLEAN_CACHE, f"{removed} expired rows removed")
    return removed


@shared_task(name=task_names.CLEAN_BROKER, ignore_result=True, soft_time_limit=240, time_limit=300)
def clean_broker() -> str:
    """Broker housekeeping: overdue deliveries back to visible, expired queues and messages removed."""
    summary = housekeeping.summary(housekeeping.run_with_engine(db.engine))
    maintenance.record_run(db.engine, task_names.CLEAN_BROKER, summary)
    return summary
