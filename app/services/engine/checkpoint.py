"""A checkpoint: one statement that commits a batch's new result rows, its cursor, the task counters and the
lease renewal together — and only while this delivery still owns the lease."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

from app.config import EngineSettings
from app.services.engine.errors import LeaseLost
from app.services.engine.leases import ClaimedBatch
from app.services.metric_counters import PREVIOUS_CHECKPOINT_SERIES, rollup_upsert

# One statement, one round trip: renew the lease and move the cursor (only while this delivery owns it), insert
# the new results (ON CONFLICT DO NOTHING), and add exactly the inserted rows to the task's counters. If the lease
# is gone, the lease CTE is empty and nothing else is written either. A row without ``item_id`` is keyed by its
# ``literature_id``; one without ``llm_decision`` gets its ``final_decision`` (the machine's, before any review).
# The same statement adds the inserted rows, and the commit time of this delivery's previous checkpoint, to the
# monotonic /metrics counters (``rolled``, see app/services/metric_counters.py) — only while the lease is owned, and
# after the task row is locked (``counted`` is read first), so locks are always taken batch -> task -> counters.
CHECKPOINT_SQL = text("""
WITH lease AS (
    UPDATE screening_batches SET
        cursor = :cursor,
        last_checkpoint_at = now(),
        status = COALESCE(CAST(:final_status AS varchar), status),
        lease_owner = CASE WHEN CAST(:final_status AS varchar) IS NULL THEN lease_owner END,
        lease_expires_at = CASE WHEN CAST(:final_status AS varchar) IS NULL
                                THEN now() + make_interval(secs => CAST(:ttl AS double precision)) END,
        completed_at = CASE WHEN CAST(:final_status AS varchar) IS NULL THEN completed_at ELSE now() END,
        error = CASE WHEN CAST(:final_status AS varchar) = 'cancelled' THEN 'cancelled'
                     WHEN CAST(:final_status AS varchar) IS NULL THEN error END
    WHERE id = :batch_id AND lease_owner = :owner AND status = 'running'
    RETURNING task_id
), incoming AS (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
        item_id bigint, literature_id bigint, decisions jsonb, llm_decision varchar, final_decision varchar,
        has_conflict boolean, manual_review_required boolean, exclusion_reason text, fields jsonb, status varchar,
        error text, prompt_tokens integer, completion_tokens integer, cost_estimate numeric,
        duration_ms double precision)
), inserted AS (
    INSERT INTO screening_results (task_id, item_id, literature_id, batch_index, decisions, llm_decision,
                                   final_decision, has_conflict, manual_review_required, exclusion_reason, fields,
                                   status, error, prompt_tokens, completion_tokens, cost_estimate, duration_ms,
                                   created_at)
    SELECT lease.task_id, COALESCE(i.item_id, i.literature_id), i.literature_id, :batch_index,
           COALESCE(i.decisions, '[]'::jsonb), COALESCE(i.llm_decision, i.final_decision), i.final_decision,
           COALESCE(i.has_conflict, false),
           COALESCE(i.manual_review_required, false), i.exclusion_reason, i.fields, i.status, i.error,
           COALESCE(i.prompt_tokens, 0), COALESCE(i.completion_tokens, 0), COALESCE(i.cost_estimate, 0),
           i.duration_ms, now()
    FROM incoming i CROSS JOIN lease
    ON CONFLICT (task_id, item_id) DO NOTHING
    RETURNING status, has_conflict, prompt_tokens, completion_tokens, cost_estimate, decisions, duration_ms
), added AS (
    SELECT count(*) AS n, count(*) FILTER (WHERE status = 'success') AS success,
           count(*) FILTER (WHERE status = 'failed') AS failed, count(*) FILTER (WHERE has_conflict) AS conflict,
           COALESCE(sum(prompt_tokens), 0) AS prompt_tokens, COALESCE(sum(completion_tokens), 0) AS completion_tokens,
           COALESCE(sum(cost_estimate), 0) AS cost
    FROM inserted
), counted AS (
    UPDATE screening_tasks t SET
        processed_items = t.processed_items + a.n, success_items = t.success_items + a.success,
        failed_items = t.failed_items + a.failed, conflict_items = t.conflict_items + a.conflict,
        prompt_tokens = t.prompt_tokens + a.prompt_tokens,
        completion_tokens = t.completion_tokens + a.completion_tokens,
        cost_estimate = t.cost_estimate + a.cost, updated_at = now()
    FROM added a, lease
    WHERE t.id = lease.task_id AND a.n > 0
    RETURNING t.id
), rolled AS ({rollup}    RETURNING 1
)
SELECT (SELECT count(*) FROM lease) AS owned,
       (SELECT cancel_requested FROM screening_tasks WHERE id = :task_id) AS cancel_requested,
       (SELECT count(*) FROM counted) AS counted,
       (SELECT count(*) FROM rolled) AS rolled
""".replace("{rollup}", rollup_upsert(
    "inserted", guard="EXISTS (SELECT 1 FROM lease) AND (SELECT count(*) FROM counted) >= 0",
    extra_series=PREVIOUS_CHECKPOINT_SERIES)))


def write_checkpoint(conn: Connection, claim: ClaimedBatch, rows: list[dict[str, Any]], cursor: int,
                     final_status: str | None, settings: EngineSettings, previous_ms: float | None = None) -> bool:
    """A checkpoint's one statement (see CHECKPOINT_SQL); raises LeaseLost if this delivery lost the batch.

    ``rows`` are result rows (``ResultRow.as_dict()`` plus ``duration_ms``); ``previous_ms`` the commit time of this
    delivery's previous checkpoint (for /metrics). Returns whether a cancel was requested.
    """
    result = conn.execute(CHECKPOINT_SQL, {
        "cursor": cursor, "final_status": None if final_status is None else str(final_status),
        "ttl": float(settings.lease_ttl), "batch_id": claim.batch_id, "owner": claim.owner,
        "batch_index": claim.batch_index, "task_id": claim.task_id, "rows": json.dumps(rows, default=str),
        "previous_ms": previous_ms,
    }).one()
    if not result.owned:
        raise LeaseLost(f"batch {claim.task_id}/{claim.batch_index} is no longer leased by {claim.owner}")
    return bool(result.cancel_requested)
