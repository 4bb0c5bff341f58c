"""A database that refuses or drops connections is a wait, not a crash and not a Celery retry: the engine's
statements (claim, checkpoint, heartbeat, finalize) back off and carry on once the server is back.

The outage is real: the engine's connections go through a TCP proxy in front of the test server, which the test
takes down (every connection dropped, new ones refused) and brings back on the same port.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from app.services import engine
from app.services.engine.waits import wait_for_database
from tests.support.engine import (
    add_records,
    duplicate_results,
    engine_env,
    result_count,
    sim,
    sim_placeholder,
    start_run,
)
from tests.support.processes import wait_for
from tests.support.tcp_proxy import TcpProxy, proxy_for


@pytest.fixture
def proxied(app, database_url: str) -> Iterator[tuple[TcpProxy, Any]]:
    """(proxy, engine context on an engine that connects through the proxy)."""
    proxy, url = proxy_for(database_url)
    proxy.up()
    db_engine = create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=0)
    settings = engine.EngineSettings(lease_ttl=60, checkpoint_every=5, checkpoint_seconds=0.5, db_wait_seconds=60,
                                     db_wait_max_backoff=0.5)
    ctx = engine.EngineContext(db_engine, settings, app.config, engine.CeleryPublisher(app.extensions["celery"]))
    try:
        yield proxy, ctx
    finally:
        proxy.down()
        db_engine.dispose()


def new_task(app, client, auth, project_id: int, monkeypatch, simulator_url: str, records: int,
             batch_size: int) -> int:
    for key, value in engine_env(sim_placeholder(simulator_url)).items():
        monkeypatch.setitem(app.config, key, value)
    add_records(app, project_id, records)
    return start_run(client, auth, project_id, batch_size=batch_size)["id"]


def outage(proxy: TcpProxy, seconds: float) -> threading.Timer:
    """Take the server away now and bring it back after ``seconds``."""
    proxy.down()
    timer = threading.Timer(seconds, proxy.up)
    timer.start()
    return timer


def test_a_claim_waits_for_the_database_to_come_back(app, client, auth, project_id, monkeypatch, proxied,
                                                     caplog) -> None:
    proxy, ctx = proxied
    task_id = new_task(app, client, auth, project_id, monkeypatch, "http://127.0.0.1:9/v1", 5, 5)
    with ctx.engine.connect() as conn:  # a pooled connection that the outage will break
        conn.execute(text("SELECT 1"))
    caplog.set_level(logging.WARNING, logger="app.services.engine.waits")

    back = outage(proxy, 1.5)  # the claim starts while the server is away
    claim = engine.claim_batch(ctx, task_id, 0, "test-host:1:wait")
    back.join()

    assert isinstance(claim, engine.ClaimedBatch) and claim.item_ids
    assert f"claim of batch {task_id}/0: database unavailable" in caplog.text


def test_a_batch_rides_out_an_outage_mid_run(app, client, auth, project_id, database_url, monkeypatch, processes,
                                             proxied, caplog) -> None:
    proxy, ctx = proxied
    simulator = sim(processes, latency=0.1)
    task_id = new_task(app, client, auth, project_id, monkeypatch, simulator.base_url, 30, 30)
    ctx = engine.EngineContext(ctx.engine, ctx.settings, {**app.config, "SIM_MAX_CONCURRENCY": "2"}, ctx.publisher)
    caplog.set_level(logging.WARNING, logger="app.services.engine.waits")
    outcome: list[Any] = []
    runner = threading.Thread(target=lambda: outcome.append(engine.run_batch(ctx, task_id, 0)))
    runner.start()
    wait_for(lambda: result_count(database_url, task_id) >= 5, timeout=60, message="a first checkpoint")

    outage(proxy, 2.0)
    runner.join(timeout=120)

    assert outcome and outcome[0].status == "done"
    assert result_count(database_url, task_id) == 30
    assert duplicate_results(database_url, task_id) == 0
    assert "database unavailable" in caplog.text
    assert engine.finalize_task(ctx, task_id) == "completed"


def test_an_outage_longer_than_the_budget_is_reported_not_hidden(app, client, auth, project_id, monkeypatch,
                                                                 proxied) -> None:
    proxy, ctx = proxied
    task_id = new_task(app, client, auth, project_id, monkeypatch, "http://127.0.0.1:9/v1", 5, 5)
    short = engine.EngineContext(ctx.engine, engine.EngineSettings(db_wait_seconds=1.0, db_wait_max_backoff=0.2),
                                 ctx.config, ctx.publisher)
    proxy.down()
    with pytest.raises(engine.DatabaseUnavailable, match="unreachable"):
        engine.claim_batch(short, task_id, 0, "test-host:1:budget")


def test_errors_that_are_not_about_the_connection_are_not_waited_on() -> None:
    calls: list[int] = []

    def constraint_violation() -> None:
        calls.append(1)
        raise IntegrityError("INSERT …", {}, Exception("duplicate key"))

    with pytest.raises(IntegrityError):
        wait_for_database(engine.EngineSettings(db_wait_seconds=30), "test", constraint_violation)
    assert calls == [1]


def test_waiting_leaves_no_garbage_for_the_cycle_collector() -> None:
    """Every checkpoint goes through ``wait_for_database``: a call must not leave a reference cycle behind (a
    ``Retrying`` per call did, about twenty objects each, for the full collector to find later), and threads
    share the wait policy safely."""
    settings = engine.EngineSettings(db_wait_seconds=30)
    wait_for_database(settings, "warm-up", lambda: None)
    gc.collect()
    gc.disable()
    try:
        results = [wait_for_database(settings, f"call {n}", lambda n=n: n * 2) for n in range(200)]
        left_behind = gc.collect()
    finally:
        gc.enable()
    assert results == [n * 2 for n in range(200)]
    assert left_behind < 50, f"{left_behind} unreachable objects after 200 calls"

    attempts = [0] * 8
    returned: list[int | None] = [None] * 8

    def fails_once(n: int) -> int:
        attempts[n] += 1
        if attempts[n] == 1:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        return n

    def run(n: int) -> None:
        returned[n] = wait_for_database(quick, f"thread {n}", lambda: fails_once(n))

    quick = engine.EngineSettings(db_wait_seconds=30, db_wait_max_backoff=0.05)
    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert attempts == [2] * 8  # each retried once, on its own thread
    assert returned == list(range(8))
