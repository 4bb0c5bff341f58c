"""Celery settings (lowercase names). ``create_app`` loads this module, then :func:`settings_for`.

The fixed settings are module attributes. What the environment tunes comes from the one settings object
(``app.config.Settings``) through :func:`settings_for`: the broker URL and the result backend (derived from
``DATABASE_URL`` unless ``CELERY_BROKER_URL`` / ``CELERY_RESULT_BACKEND`` override them), the transport's clocks
and beat's schedule — so the sweeper runs at the same ``SWEEP_INTERVAL_SECONDS`` the engine uses.
"""

from __future__ import annotations

from typing import Any

from celery.app.backends import BACKEND_ALIASES
from kombu import Exchange, Queue
from kombu.transport import TRANSPORT_ALIASES

from app import task_names
from app.config import Settings

# The PostgreSQL broker (tasks/transport.py), a subclass of kombu's SQLAlchemy transport. kombu takes the
# transport from the URL scheme before the "+", so every process that loads this config gets the alias.
BROKER_TRANSPORT_ALIAS = "litpg"
TRANSPORT_ALIASES[BROKER_TRANSPORT_ALIAS] = "tasks.transport:Transport"
# Celery's database result backend, on the application's connection pool instead of an engine of its own
# (tasks/results.py); the URL keeps its ``db+`` scheme.
BACKEND_ALIASES["db"] = "tasks.results:AppEngineDatabaseBackend"


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
broker_connection_retry_on_startup = True
worker_hijack_root_logger = False
worker_send_task_events = True
task_send_sent_event = True

database_engine_options = {"pool_pre_ping": True}
database_table_names = {"task": "celery_taskmeta", "group": "celery_tasksetmeta"}
database_create_tables_at_setup = False

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


def settings_for(settings: Settings, database_url: str) -> dict[str, Any]:
    """The Celery settings the environment tunes, from ``settings`` (``database_url``: the resolved URL)."""
    celery, beat = settings.celery, settings.beat
    return {
        "broker_url": celery.broker_url or broker_url_for(database_url),
        "result_backend": celery.result_backend or result_backend_for(database_url),
        "result_expires": celery.result_expires,
        # how long the worker waits for a killed pool child's result before WorkerLostError (re-run: idempotent)
        "worker_lost_wait": celery.worker_lost_wait,
        # Broker transport (tasks/transport.py). visibility_timeout: seconds after which an unacked message of a
        # dead worker is delivered again (live workers renew theirs); polling_interval: safety poll of idle
        # queues (wake-ups come from LISTEN/NOTIFY); housekeeping_interval: reclaim overdue messages, drop
        # expired queues.
        "broker_transport_options": {
            "visibility_timeout": celery.visibility_timeout,
            "polling_interval": celery.polling_interval,
            "housekeeping_interval": celery.housekeeping_interval,
        },
        # Flower's and other event receivers' queues expire this long after their consumer stopped.
        "event_queue_expires": celery.event_queue_expires,
        "control_queue_expires": celery.control_queue_expires,
        "beat_schedule": {
            # maintenance (tasks/maintenance.py); every job is safe on several beat instances
            "clean-cache": {"task": task_names.CLEAN_CACHE, "schedule": beat.cache_cleanup_interval},
            "clean-broker": {"task": task_names.CLEAN_BROKER, "schedule": beat.broker_cleanup_interval},
            # lease sweeper: re-sends lost batches, finalizes finished tasks (tasks/screening.py)
            "screening-sweep": {"task": task_names.SWEEP, "schedule": settings.engine.sweep_interval},
            # deletes celery_taskmeta rows older than result_expires
            "celery-backend-cleanup": {"task": "celery.backend_cleanup", "schedule": beat.result_cleanup_interval},
        },
    }
