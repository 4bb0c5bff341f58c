"""Tiny tasks that prove a worker runs tasks: a ping, and probes used by the broker tests and benchmark.

Registered only by the test and benchmark worker entry (``celery -A tasks.diagnostic_worker``), never by the
production worker (``celery -A tasks``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid

from billiard.process import current_process
from celery import shared_task
from sqlalchemy import text

from app import task_names
from app.extensions import db


@shared_task(name=task_names.PING, soft_time_limit=30, time_limit=60)
def ping(value: int) -> dict:
    """Echo ``value`` + 1 with the database's server version."""
    version = db.session().execute(text("SHOW server_version")).scalar_one()
    return {"value": value + 1, "server_version": version}


def _record(phase: str, tag: str, worker: str) -> None:
    """One ``app_cache`` row per execution phase: ``diag:<phase>:<tag>:<uuid>`` (kept for a day)."""
    value = {"tag": tag, "phase": phase, "worker": worker, "pid": os.getpid(), "at": time.time()}
    session = db.session()
    session.execute(
        text("INSERT INTO app_cache (key, value, expires_at, created_at) "
             "VALUES (:key, CAST(:value AS jsonb), now() + interval '1 day', now())"),
        {"key": f"diag:{phase}:{tag}:{uuid.uuid4().hex}", "value": json.dumps(value)},
    )
    session.commit()


@shared_task(name=task_names.DIAG_RECORD_EXECUTION, bind=True, soft_time_limit=600, time_limit=660)
def record_execution(self, tag: str, sleep_seconds: float = 0.0) -> str:
    """Record that this execution started, sleep, record that it finished (tests count the rows)."""
    worker = self.request.hostname or socket.gethostname()
    _record("start", tag, worker)
    time.sleep(sleep_seconds)
    _record("finish", tag, worker)
    return worker


@shared_task(name=task_names.DIAG_NOOP, ignore_result=True, soft_time_limit=30, time_limit=60)
def noop(sent_at: float = 0.0, latency_file: str | None = None) -> None:
    """Do nothing; with ``latency_file``, append ``start-time publish→start-latency`` to that file."""
    if latency_file:
        now = time.time()
        with open(latency_file, "a") as handle:
            handle.write(f"{now:.6f} {now - sent_at:.6f}\n")


@shared_task(name=task_names.DIAG_STOP_OWN_WORKER, bind=True, soft_time_limit=30, time_limit=60)
def stop_own_worker(self, tag: str) -> str:
    """Ask this task's own worker for a warm shutdown (SIGTERM to its main process), then finish at once.

    The shutdown request and the end of the running task (its ack frees the prefetch slot) arrive together: a
    test of warm shutdown without a race against the clock. Recorded like ``record_execution``.
    """
    worker = self.request.hostname or socket.gethostname()
    _record("start", tag, worker)
    main_pid = os.getpid() if current_process().name == "MainProcess" else os.getppid()
    os.kill(main_pid, signal.SIGTERM)
    _record("finish", tag, worker)
    return worker
