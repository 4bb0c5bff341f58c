"""Provider limits hold across the fleet: four real worker processes share one requests-per-minute budget and
one in-flight limit through PostgreSQL, counted where it matters: at the (simulated) provider."""

from __future__ import annotations

import threading
import time

import pytest

from app.llm.limits import FleetLimits
from tests.support.engine import (
    add_records,
    configure_app,
    engine_env,
    result_count,
    sim,
    start_run,
    wait_final,
)
from tests.support.processes import ProcessGroup

RPM = 600          # 10 request starts a second for the whole fleet
IN_FLIGHT = 3      # at most 3 requests at the provider at once, fleet-wide
WINDOW = 5.0


@pytest.mark.slow
@pytest.mark.usefixtures("fast_teardown")
def test_rpm_and_in_flight_limits_hold_across_four_workers(app, client, auth, project_id, database_url: str,
                                                           processes: ProcessGroup, monkeypatch) -> None:
    simulator = sim(processes, latency=0.25)
    limits = {"SIM_RPM": str(RPM), "SIM_MAX_CONCURRENCY": str(IN_FLIGHT), "LLM_LIMITS_SCOPE": "fleet"}
    configure_app(app, monkeypatch, simulator, **limits)
    add_records(app, project_id, 100)
    for index in range(4):
        processes.start_worker(database_url, f"w{index}", concurrency=2, **engine_env(simulator, **limits))
    task = start_run(client, auth, project_id, batch_size=10)
    assert wait_final(database_url, task["id"], timeout=180) == "completed"
    assert result_count(database_url, task["id"]) == 100

    stats = simulator.stats(window=WINDOW)
    assert stats["calls_total"] == 200
    # each worker alone would allow RPM and IN_FLIGHT; together they stay within one budget
    assert stats["max_calls_in_window"] <= RPM * WINDOW / 60 + 1, stats
    assert stats["max_in_flight"] <= IN_FLIGHT, stats
    assert stats["max_in_flight"] >= 2  # the limit, not a lack of work, is what bounds it


def test_fleet_limits_space_starts_across_threads(app, database_url: str) -> None:
    """In process, many threads sharing the PostgreSQL limiter: no window holds more than the limit allows."""
    from app.extensions import db

    with app.app_context():
        engine = db.engine
    limits = FleetLimits(engine, "test|threads", rpm=1200, max_concurrency=2, lease_seconds=30)
    starts: list[float] = []
    lock = threading.Lock()
    concurrent = [0, 0]

    def call() -> None:
        with limits.request():
            with lock:
                concurrent[0] += 1
                concurrent[1] = max(concurrent[1], concurrent[0])
                starts.append(time.monotonic())
            time.sleep(0.02)
            with lock:
                concurrent[0] -= 1

    threads = [threading.Thread(target=call) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    starts.sort()
    window = 0.5
    busiest = max(sum(1 for t in starts if s <= t <= s + window) for s in starts)
    assert len(starts) == 40
    assert busiest <= 1200 * window / 60 + 1
    assert concurrent[1] <= 2


def test_a_dead_holder_stops_counting_when_its_lease_expires(app, database_url: str) -> None:
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        engine = db.engine
    limits = FleetLimits(engine, "test|lease", rpm=6000, max_concurrency=1, lease_seconds=0.5)
    assert limits._try_take("00000000-0000-0000-0000-000000000001") is not None  # never releases (killed)
    assert limits._try_take("00000000-0000-0000-0000-000000000002") is None
    time.sleep(0.6)
    with limits.request():
        with engine.connect() as conn:
            holders = conn.execute(text("SELECT count(*) FROM llm_inflight WHERE limiter = 'test|lease'")).scalar()
    assert holders == 1
