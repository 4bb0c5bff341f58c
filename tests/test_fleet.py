"""A fleet on a small PostgreSQL, a full or restarting server, and PgBouncer in transaction mode.

Every test starts its own PostgreSQL (``pg_cluster``: initdb into a temp dir, never a shared server), a whole
stack of real processes (gunicorn, ``celery worker`` × W, the maintenance worker, beat, Flower) and the LLM
simulator, and drives the run over HTTP as a user would. Assertions read the database, the process table and
the server's own log; nothing asserts a duration.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from tests.support.fleet import (
    TOO_MANY,
    ConnectionSampler,
    fleet_env,
    over_target,
    result_counts,
    results_so_far,
    rows,
    start_fleet,
    wait_final,
)
from tests.support.pgbouncer import PgBouncer
from tests.support.processes import ProcessGroup, wait_for
from tests.support.simulator import start_simulator

pytestmark = pytest.mark.slow


def _sample_until_final(sampler: ConnectionSampler, url: str, task_id: int, timeout: float,
                        server_log: Path) -> str:
    def final() -> str | None:
        sampler.sample()
        assert TOO_MANY not in server_log.read_text(errors="replace"), f"the server refused: {sampler.peak}"
        found = rows(url, "SELECT status FROM screening_tasks WHERE id = %s", task_id)
        status = found[0][0] if found else None
        return status if status in ("completed", "completed_with_errors", "failed", "cancelled") else None

    return str(wait_for(final, timeout, interval=0.5, message=f"task {task_id} to finish"))


def test_four_workers_at_concurrency_two_and_the_stack_fit_max_connections_40(
        pg_cluster, processes: ProcessGroup) -> None:
    cluster = pg_cluster(max_connections=40)
    url = cluster.create_database()
    database = url.rsplit("/", 1)[1]
    simulator = start_simulator(processes, latency=0.05)
    fleet = start_fleet(processes, url, fleet_env(simulator.base_url), workers=4, concurrency=2)
    sampler = ConnectionSampler(cluster.url(), database)
    wait_for(lambda: sampler.sample().get("pool-child"), 60, message="pool children connected")
    idle = dict(sampler.peak)

    project_id = fleet.create_project(300)
    task_id = fleet.start_screening(project_id, batch_size=20)
    assert _sample_until_final(sampler, url, task_id, timeout=300, server_log=cluster.log) == "completed"

    assert result_counts(url, task_id) == (300, 300)
    assert not fleet.exited(), fleet.exited()
    assert TOO_MANY not in fleet.logs()
    assert TOO_MANY not in cluster.log.read_text(errors="replace")
    assert sampler.peak_total < 40
    assert over_target(idle) == {}, idle
    assert over_target(sampler.peak) == {}, sampler.peak


@pytest.mark.parametrize("trouble", ["full", "restart"])
def test_a_full_or_restarting_server_is_a_wait_not_a_crash(pg_cluster, processes: ProcessGroup,
                                                           trouble: str) -> None:
    cluster = pg_cluster(max_connections=40)
    url = cluster.create_database()
    simulator = start_simulator(processes, latency=0.4)
    # a lease outlives the 30 s outage (production's is 120 s): the batch's own worker, waiting in place, keeps it;
    # with the suite's 5 s a starved heartbeat on a loaded box let the sweeper hand the batch to another worker
    env = fleet_env(simulator.base_url, SIM_MAX_CONCURRENCY=2, LEASE_TTL_SECONDS=60)
    fleet = start_fleet(processes, url, env, workers=2, concurrency=2, web_workers=1, flower=False)
    project_id = fleet.create_project(120)
    task_id = fleet.start_screening(project_id, batch_size=20)
    wait_for(lambda: results_so_far(url, task_id) >= 10, 120, message="the run under way")

    if trouble == "full":
        with cluster.filled(keep_free=0) as held:
            assert held  # every slot is taken: the server refuses everyone for 30 s
            time.sleep(30)
        assert TOO_MANY in cluster.log.read_text(errors="replace")  # the server did refuse connections
    else:
        cluster.restart()  # pg_ctl restart -m fast: every connection dropped

    assert wait_final(url, task_id, timeout=300) == "completed"
    assert result_counts(url, task_id) == (120, 120)
    assert not fleet.exited(), fleet.exited()
    # a refused connection was waited out where it happened: no batch went back through Celery's retry ladder
    attempts = rows(url, "SELECT batch_index, attempts FROM screening_batches WHERE task_id = %s", task_id)
    assert attempts and all(count == 1 for _index, count in attempts), attempts


def test_the_engine_through_pgbouncer_in_transaction_mode_with_a_worker_killed(
        pg_cluster, processes: ProcessGroup) -> None:
    cluster = pg_cluster(max_connections=25)
    direct_url = cluster.create_database()
    database = direct_url.rsplit("/", 1)[1]
    with PgBouncer(cluster, pool_size=8) as bouncer:
        simulator = start_simulator(processes, latency=0.2)
        env = fleet_env(simulator.base_url, SIM_MAX_CONCURRENCY=2, DATABASE_DIRECT_URL=direct_url,
                        DATABASE_POOLER="pgbouncer-transaction")
        fleet = start_fleet(processes, bouncer.url(database), env, workers=3, concurrency=2, web_workers=1,
                            flower=False)
        project_id = fleet.create_project(150)
        task_id = fleet.start_screening(project_id, batch_size=15)
        wait_for(lambda: results_so_far(direct_url, task_id) >= 15, 120, message="the run under way")
        victim = fleet.started["worker0"]
        ProcessGroup.kill_tree(victim)  # kill -9 of the worker and its pool children
        victim.wait(timeout=10)

        assert wait_final(direct_url, task_id, timeout=300) == "completed"
        assert result_counts(direct_url, task_id) == (150, 150)
        survivors = {name for name in fleet.exited() if name != "worker0"}
        assert not survivors, fleet.exited()

        # Pooled traffic holds at most pool_size server connections; LISTEN goes straight to PostgreSQL.
        assert bouncer.process is not None
        bouncer_ports = {c.laddr.port for c in psutil.Process(bouncer.process.pid).net_connections("tcp")
                         if c.raddr and c.raddr.port == cluster.port}
        backends = rows(cluster.url(), "SELECT application_name, client_port FROM pg_stat_activity "
                                       "WHERE datname = %s AND backend_type = 'client backend'", database) or []
        through_bouncer = [name for name, port in backends if port in bouncer_ports]
        listeners = [(name, port) for name, port in backends if name.endswith(":listen")]
        assert len(through_bouncer) <= 8
        assert listeners and all(port not in bouncer_ports for _name, port in listeners)
        log = bouncer.log_text()
        assert "prepared statement" not in log
        assert TOO_MANY not in fleet.logs() + cluster.log.read_text(errors="replace")
