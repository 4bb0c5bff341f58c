"""Prometheus metrics: process-local counters plus gauges read from the database at scrape time."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily


class DatabaseCollector:
    """Gauges computed from rows when scraped (so every web worker reports the same truth)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self):  # type: ignore[no-untyped-def]
        from sqlalchemy import func, select

        from app.extensions import db
        from app.models import ScreeningTask

        tasks = GaugeMetricFamily("litscreen_tasks", "Screening tasks by status", labels=["status"])
        with self.app.app_context():
            session = db.session()
            for status, count in session.execute(
                select(ScreeningTask.status, func.count()).group_by(ScreeningTask.status)
            ):
                tasks.add_metric([status], count)
        yield tasks


def render_metrics(app: Any) -> tuple[bytes, str]:
    """The metrics page body and content type."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(app))
    return generate_latest(registry), CONTENT_TYPE_LATEST
