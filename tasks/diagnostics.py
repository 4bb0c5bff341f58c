"""A trivial task that proves a worker runs tasks and reaches the database."""

from __future__ import annotations

from celery import shared_task
from sqlalchemy import text

from app import task_names
from app.extensions import db


@shared_task(name=task_names.PING)
def ping(value: int) -> dict:
    """Echo ``value`` + 1 with the database's server version."""
    version = db.session().execute(text("SHOW server_version")).scalar_one()
    return {"value": value + 1, "server_version": version}
