"""Celery settings (lowercase names). ``create_app`` loads this module and sets the broker and result URLs.

The broker URL and the result backend are derived from ``DATABASE_URL`` (see ``broker_url_for`` and
``result_backend_for``) unless ``CELERY_BROKER_URL`` / ``CELERY_RESULT_BACKEND`` override them.
"""

from __future__ import annotations

import os

from kombu import Exchange, Queue
from sqlalchemy.pool import NullPool
from kombu.transport import TRANSPORT_ALIASES

from app import task_names

# The PostgreSQL broker (tasks/broker/), a subclass of kombu's SQLAlchemy transport. kombu takes the
# transport from the URL scheme before the "+", so every process that loads this config gets the alias.
BROKER_TRANSPORT_ALIAS = "litpg"
TRANSPORT_ALIASES[BROKER_TRANSPORT_ALIAS] = "tasks.broker.transport:Transport"


def broker_url_for(database_url: str) -> str:
    """The broker URL on the application database (our PostgreSQL transport)."""
    return f"{BROKER_TRANSPORT_ALIAS}+{database_url}"


def result_backend_for(database_url: str) -> str:
    """Celery's database result backend on the application database."""
    return f"db+{database_url}"


accept_content = ["json"]
task_serializer = "json"
result_serializer = "json"
timezone = "UTC"
enable_utc = True

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_pool_putlocks = False
task_track_started = True
result_extended = True
result_expires = int(os.environ.get("RESULT_EXPIRES_SECONDS", 7 * 24 * 3600))
broker_connection_retry_on_startup = True
worker_hijack_root_logger = False
# how long the worker waits for a killed pool child's result before WorkerLostError (re-run: work is idempotent)
worker_lost_wait = float(os.environ.get("WORKER_LOST_WAIT_SECONDS", 10.0))
worker_send_task_events = True
task_send_sent_event = True

# The result backend holds a connection only while it stores or reads a result (NullPool): a pool child's steady
# connections are its application pool and its broker connection (README "Connection budget").
database_engine_options = {"pool_pre_ping": True, "poolclass": NullPool}
database_table_names = {"task": "celery_taskmeta", "group": "celery_tasksetmeta"}
database_create_tables_at_setup = False

# Broker transport (tasks/broker/). visibility_timeout: seconds after which an unacked message of a dead
# worker is delivered again (live workers renew theirs); polling_interval: safety poll of idle queues (wake-ups
# come from LISTEN/NOTIFY); housekeeping_interval: reclaim overdue messages, drop expired queues.
broker_transport_options = {
    "visibility_timeout": float(os.environ.get("BROKER_VISIBILITY_TIMEOUT", 300)),
    "polling_interval": float(os.environ.get("BROKER_POLLING_INTERVAL", 2.0)),
    "housekeeping_interval": float(os.environ.get("BROKER_HOUSEKEEPING_INTERVAL", 30)),
}
# Flower's and other event receivers' queues expire this long after their consumer stopped.
event_queue_expires = float(os.environ.get("CELERY_EVENT_QUEUE_EXPIRES", 60.0))
control_queue_expires = float(os.environ.get("CELERY_CONTROL_QUEUE_EXPIRES", 10.0))

# Two queues. Every worker consumes both (a worker without -Q consumes every queue in task_queues); the
# Procfile's one-process `maintenance` worker consumes only the second, so the sweeper and the cleanups never
# wait behind long screening batches when every screening process is busy.
MAINTENANCE_QUEUE = "maintenance"
task_default_queue = "celery"
task_queues = (
    Queue("celery", Exchange("celery", type="direct"), routing_key="celery"),
    Queue(MAINTENANCE_QUEUE, Exchange(MAINTENANCE_QUEUE, type="direct"), routing_key=MAINTENANCE_QUEUE),
)
task_routes = {
    "litscreen.maintenance.*": {"queue": MAINTENANCE_QUEUE, "routing_key": MAINTENANCE_QUEUE},
    "celery.backend_cleanup": {"queue": MAINTENANCE_QUEUE, "routing_key": MAINTENANCE_QUEUE},
}

beat_schedule: dict = {
    # maintenance (tasks/maintenance.py); every job is safe on several beat instances
    "clean-cache": {
        "task": task_names.CLEAN_CACHE,
        "schedule": float(os.environ.get("CACHE_CLEANUP_INTERVAL_SECONDS", 60)),
    },
    "clean-broker": {
        "task": task_names.CLEAN_BROKER,
        "schedule": float(os.environ.get("BROKER_CLEANUP_INTERVAL_SECONDS", 60)),
    },
    "screening-sweep": {  # lease sweeper: re-sends lost batches, finalizes finished tasks (tasks/screening.py)
        "task": task_names.SWEEP,
        "schedule": float(os.environ.get("SWEEP_INTERVAL_SECONDS", 30)),
    },
    "celery-backend-cleanup": {  # deletes celery_taskmeta rows older than result_expires
        "task": "celery.backend_cleanup",
        "schedule": float(os.environ.get("RESULT_CLEANUP_INTERVAL_SECONDS", 3600)),
    },
}
