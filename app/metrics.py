"""Prometheus metrics for ``GET /metrics``, read from the database at scrape time.

Every value is read from rows when scraped, so any number of gunicorn workers (and hosts) report the same truth
and nothing needs prometheus-client's multiprocess mode. A scrape costs the same whatever the number of results:

* counters (``_total``; they never go down, also when a project is deleted) come from ``metric_counters``, which
  each checkpoint adds to (``app/services/metric_counters.py``): records processed by status, batch recoveries
  (deliveries beyond the first), the record screening time histogram, LLM calls, cached answers, errors, tokens
  and cost (``_usd``) by provider and model;
* gauges (what can go down): tasks and batches by status (a series for every status, zero included), lease
  expiries waiting for the sweeper, batches that needed more than one delivery;
* checkpoint commit latency: a counter histogram too, each checkpoint adding its delivery's previous one;
* cache entries and hits/misses (``app_cache``, ``app_cache_counters`` when the cache layer keeps counters);
* broker: ready and unacked messages and the oldest ready message's age per queue (``kombu_message``), and
  Celery results by state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import Connection, text

from app.models.statuses import BatchStatus, ResultStatus, TaskStatus
from app.services import metric_counters
from app.services.metric_counters import CHECKPOINT_BUCKETS_SECONDS, RECORD_BUCKETS_SECONDS

logger = logging.getLogger(__name__)


_TASKS_BY_STATUS = "SELECT status, count(*) FROM screening_tasks GROUP BY status"
_BATCHES_BY_STATUS = "SELECT status, count(*) FROM screening_batches GROUP BY status"
_BATCH_HEALTH = """
SELECT count(*) FILTER (WHERE status = 'running' AND lease_expires_at < now()),
       count(*) FILTER (WHERE attempts > 1)
FROM screening_batches
"""
# app_cache grows with the LLM calls: past 10,000 rows its size is the planner's estimate (kept by autovacuum),
# the expired rows are counted through the expires_at index
_CACHE_SIZE = """
SELECT CASE WHEN c.reltuples >= 10000 THEN c.reltuples::bigint ELSE (SELECT count(*) FROM app_cache) END,
       (SELECT count(*) FROM app_cache WHERE expires_at <= now())
FROM pg_class c WHERE c.oid = 'app_cache'::regclass
"""
_CACHE_COUNTERS = "SELECT prefix, hits, misses FROM app_cache_counters"
_QUEUES = """
SELECT q.name,
       count(m.id) FILTER (WHERE m.visible),
       count(m.id) FILTER (WHERE NOT m.visible),
       coalesce(extract(epoch FROM now() - min(m.timestamp AT TIME ZONE 'UTC') FILTER (WHERE m.visible)), 0)
FROM kombu_queue q LEFT JOIN kombu_message m ON m.queue_id = q.id
GROUP BY q.name
"""
_CELERY_RESULTS = "SELECT status, count(*) FROM celery_taskmeta GROUP BY status"


def _histogram(name: str, documentation: str, bounds: tuple[float, ...], counts: list[int],
               total: float) -> HistogramMetricFamily:
    """A histogram family from per-bucket counts (``counts[i]`` = observations in bucket i, last = +Inf)."""
    cumulative, buckets = 0, []
    for bound, count in zip([*map(str, bounds), "+Inf"], counts, strict=True):
        cumulative += count
        buckets.append((bound, cumulative))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=total)


class DatabaseCollector:
    """Computes every litscreen metric from the database when scraped."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        from app.extensions import db

        with self.app.app_context():
            with db.engine.connect() as conn:
                for section in (self._screening, self._counters, self._cache, self._broker):
                    try:
                        with conn.begin():
                            yield from section(conn)
                    except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
                        logger.warning("metrics section %s failed: %s", section.__name__, type(exc).__name__)

    def _screening(self, conn: Connection) -> Iterator[Metric]:
        tasks = GaugeMetricFamily("litscreen_screening_tasks", "Screening tasks by status", labels=["status"])
        for status, count in _every_status(TaskStatus, conn.execute(text(_TASKS_BY_STATUS))):
            tasks.add_metric([status], count)
        yield tasks
        batches = GaugeMetricFamily("litscreen_screening_batches", "Screening batches by status",
                                    labels=["status"])
        for status, count in _every_status(BatchStatus, conn.execute(text(_BATCHES_BY_STATUS))):
            batches.add_metric([status], count)
        yield batches
        expired, recovered = conn.execute(text(_BATCH_HEALTH)).one()
        yield GaugeMetricFamily("litscreen_batch_leases_expired",
                                "Running batches whose lease expired (waiting for the sweeper)", value=expired)
        yield GaugeMetricFamily("litscreen_batches_recovered", "Batches that needed more than one delivery",
                                value=recovered)

    def _counters(self, conn: Connection) -> Iterator[Metric]:
        series: dict[str, list[tuple[dict[str, Any], float]]] = {}
        for metric, labels, value in metric_counters.read_all(conn):
            series.setdefault(metric, []).append((labels, value))
        records = CounterMetricFamily("litscreen_records_processed", "Records screened (result rows) by status",
                                      labels=["status"])
        by_status = {str(labels.get("status")): value
                     for labels, value in series.get(metric_counters.RECORDS_PROCESSED, [])}
        for status in [*ResultStatus, *sorted(set(by_status) - set(ResultStatus))]:
            records.add_metric([str(status)], by_status.get(str(status), 0.0))
        yield records
        recoveries = sum(value for _labels, value in series.get(metric_counters.BATCH_RECOVERIES, []))
        yield CounterMetricFamily("litscreen_batch_recoveries",
                                  "Batch deliveries beyond the first (resumed after a crash, retry or sweep)",
                                  value=recoveries)
        yield self._counted_histogram(
            series, metric_counters.RECORD_SECONDS_BUCKET, metric_counters.RECORD_SECONDS_SUM,
            "litscreen_record_screening_seconds", "Time to screen one record (both models)", RECORD_BUCKETS_SECONDS)
        yield self._counted_histogram(
            series, metric_counters.CHECKPOINT_SECONDS_BUCKET, metric_counters.CHECKPOINT_SECONDS_SUM,
            "litscreen_checkpoint_commit_seconds",
            "Checkpoint commit latency of screening batches (each checkpoint reports its delivery's previous one)",
            CHECKPOINT_BUCKETS_SECONDS)
        yield from self._llm(series)

    @staticmethod
    def _counted_histogram(series: dict[str, list[tuple[dict[str, Any], float]]], bucket_metric: str,
                           sum_metric: str, name: str, documentation: str,
                           bounds: tuple[float, ...]) -> HistogramMetricFamily:
        """A histogram from the per-bucket counters ``bucket_metric`` (labels {"bucket": width_bucket index})."""
        counts = [0] * (len(bounds) + 1)
        for labels, value in series.get(bucket_metric, []):
            counts[min(max(int(labels.get("bucket", 0)), 0), len(bounds))] += int(value)
        total = sum(value for _labels, value in series.get(sum_metric, []))
        return _histogram(name, documentation, bounds, counts, total)

    def _llm(self, series: dict[str, list[tuple[dict[str, Any], float]]]) -> Iterator[Metric]:
        labels = ["provider", "model"]
        families = {
            "llm_calls": CounterMetricFamily("litscreen_llm_calls", "LLM calls made (cache misses)", labels=labels),
            "llm_cached_answers": CounterMetricFamily("litscreen_llm_cached_answers",
                                                      "Model answers served from the cache", labels=labels),
            "llm_errors": CounterMetricFamily("litscreen_llm_errors", "Model answers that failed", labels=labels),
            "llm_tokens": CounterMetricFamily("litscreen_llm_tokens", "LLM tokens", labels=[*labels, "kind"]),
            "llm_cost_usd": CounterMetricFamily("litscreen_llm_cost_usd", "Estimated LLM cost in US dollars",
                                                labels=labels),
        }
        for metric, family in families.items():
            for label_set, value in series.get(metric, []):
                key = [str(label_set.get("provider", "")), str(label_set.get("model", ""))]
                family.add_metric([*key, str(label_set["kind"])] if metric == "llm_tokens" else key, value)
        yield from families.values()

    def _cache(self, conn: Connection) -> Iterator[Metric]:
        size, expired = conn.execute(text(_CACHE_SIZE)).one()
        yield GaugeMetricFamily("litscreen_cache_entries", "Rows in app_cache", value=size)
        yield GaugeMetricFamily("litscreen_cache_expired_entries", "Expired rows not yet removed", value=expired)
        if conn.execute(text("SELECT to_regclass('app_cache_counters')")).scalar() is None:
            return
        hits = CounterMetricFamily("litscreen_cache_hits", "Cache hits by key prefix", labels=["prefix"])
        misses = CounterMetricFamily("litscreen_cache_misses", "Cache misses by key prefix", labels=["prefix"])
        for prefix, hit_count, miss_count in conn.execute(text(_CACHE_COUNTERS)):
            hits.add_metric([prefix], hit_count)
            misses.add_metric([prefix], miss_count)
        yield hits
        yield misses

    def _broker(self, conn: Connection) -> Iterator[Metric]:
        ready = GaugeMetricFamily("litscreen_broker_queue_depth", "Messages ready in the queue", labels=["queue"])
        unacked = GaugeMetricFamily("litscreen_broker_queue_unacked", "Messages delivered, not yet acked",
                                    labels=["queue"])
        age = GaugeMetricFamily("litscreen_broker_oldest_message_age_seconds",
                                "Age of the oldest ready message (0 when empty)", labels=["queue"])
        for name, ready_count, unacked_count, oldest in conn.execute(text(_QUEUES)):
            ready.add_metric([name], ready_count)
            unacked.add_metric([name], unacked_count)
            age.add_metric([name], max(0.0, float(oldest)))
        yield from (ready, unacked, age)
        results = GaugeMetricFamily("litscreen_celery_results", "Celery task results kept, by state",
                                    labels=["state"])
        for status, count in conn.execute(text(_CELERY_RESULTS)):
            results.add_metric([status or ""], count)
        yield results

def _every_status(statuses: Any, rows: Any) -> list[tuple[str, int]]:
    """(status, count) for every member of ``statuses`` (zero when no row has it), then any other status seen."""
    counts = {str(status): int(count) for status, count in rows}
    known = [str(status) for status in statuses]
    return [(status, counts.get(status, 0)) for status in known] + sorted(
        (status, count) for status, count in counts.items() if status not in known)


def render_metrics(app: Any) -> tuple[bytes, str]:
    """The metrics page body and content type."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(app))
    return generate_latest(registry), CONTENT_TYPE_LATEST
