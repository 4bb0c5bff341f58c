"""Where an engine run's time went, from the database's own timestamps (``screening_tasks`` / ``…_batches``).

Shared by the engine benchmarks. The task's ``created_at`` (the start request) to its ``completed_at`` is the run;
each batch runs from ``claimed_at`` (a worker's claim, before ``open_processor``) to ``completed_at``. With
``ideal_item_seconds`` (one worker's LLM-bound seconds per item) the shortfall against the ideal splits into

* in-batch efficiency — the batches' LLM-bound time over their measured time (claim and open, the drain when
  fewer items than the concurrency are left, checkpoints);
* worker utilisation — the time batches ran over ``workers ×`` the run (dispatch before the first claim, gaps
  between a worker's batches, the tail when one worker has no batch left, the chord callback).

Their product is the ratio to the ideal (up to the task's timestamps being transaction-start times).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.engine import query


def batch_breakdown(database_url: str, task_id: int, workers: int, ideal_item_seconds: float) -> dict[str, Any]:
    """The split described in the module docstring, as rounded figures."""
    created, completed = query(database_url, "SELECT created_at, completed_at FROM screening_tasks WHERE id = %s",
                               task_id)[0]
    batches = query(database_url, "SELECT size, claimed_at, completed_at, attempts FROM screening_batches "
                                  "WHERE task_id = %s ORDER BY claimed_at", task_id)
    spans = [((c - created).total_seconds(), (d - created).total_seconds(), size)
             for size, c, d, _attempts in batches if c is not None and d is not None]
    run = (completed - created).total_seconds()
    busy = sum(end - start for start, end, _size in spans)
    ideal = sum(size * ideal_item_seconds for _start, _end, size in spans)
    # time (after the first claim, before the last completion) with fewer batches running than workers
    events = sorted([(s, 1) for s, _e, _n in spans] + [(e, -1) for _s, e, _n in spans])
    running, last, short = 0, events[0][0] if events else 0.0, 0.0
    for at, step in events:
        if running < workers:
            short += (at - last) * (workers - running)
        running += step
        last = at
    durations = [end - start for start, end, _size in spans]
    return {
        "run_seconds": round(run, 2),
        "to_first_claim_seconds": round(min(s for s, _e, _n in spans), 2) if spans else None,
        "after_last_batch_seconds": round(run - max(e for _s, e, _n in spans), 2) if spans else None,
        "batch_seconds": [round(d, 1) for d in durations],
        "ideal_batch_seconds": round(ideal / len(spans), 2) if spans else None,
        "worker_idle_seconds_between_first_claim_and_last_batch": round(short, 1),
        "in_batch_efficiency": round(ideal / busy, 3) if busy else None,
        "worker_utilisation": round(busy / (workers * run), 3) if run else None,
        "attempts": sorted({a for *_rest, a in batches}),
    }


@dataclass
class BenchStack:
    """A bench's running engine: its workers, an in-process app on the same database, and a user's auth header."""

    workers: list[Any]
    app: Any
    client: Any
    headers: dict[str, str]


def start_engine_stack(processes: Any, database_url: str, simulator_url: str, *, workers: int, sim_concurrency: int,
                       limits_scope: str, **extra_env: str) -> BenchStack:
    """``workers`` real ``celery worker`` processes (``--concurrency 1``) on the simulator's two models with the LLM
    cache off, an app on ``database_url`` with the same settings, and a bench user's token."""
    from app import create_app
    from app.extensions import db
    from app.services.users import create_token, create_user

    env = {"SCREENING_MODELS": "sim:model-a,sim:model-b", "SIM_BASE_URL": simulator_url, "LLM_CACHE": "off",
           "SIM_MAX_CONCURRENCY": str(sim_concurrency), "LOG_LEVEL": "WARNING", "LLM_LIMITS_SCOPE": limits_scope,
           **extra_env}
    started = [processes.start_worker(database_url, f"w{i}", concurrency=1, **env) for i in range(workers)]
    app = create_app({"DATABASE_URL": database_url, **env})
    with app.app_context():
        create_user(db.session(), "bench")
        token = create_token(db.session(), "bench")
    return BenchStack(started, app, app.test_client(), {"Authorization": f"Bearer {token}"})
