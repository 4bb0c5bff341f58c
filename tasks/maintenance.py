"""Beat's maintenance tasks: thin wrappers around ``app.services.maintenance``."""

from __future__ import annotations

import logging

from celery import shared_task

from app import task_names
from app.extensions import db
from app.services import maintenance

logger = logging.getLogger(__name__)


@shared_task(name=task_names.CLEAN_CACHE, ignore_result=True, soft_time_limit=240, time_limit=300)
def clean_cache() -> int:
    """Delete expired cache rows in bounded batches."""
    return maintenance.clean_cache(db.engine)


@shared_task(name=task_names.CLEAN_BROKER, ignore_result=True, soft_time_limit=240, time_limit=300)
def clean_broker() -> str:
    """Broker housekeeping: overdue deliveries back to visible, expired queues and messages removed."""
    return maintenance.summary(maintenance.clean_broker(db.engine))
