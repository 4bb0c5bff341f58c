"""Connection budget: who holds which PostgreSQL connection, idle and while screening, against issue 9's targets.

Reads ``pg_stat_activity`` on a private PostgreSQL this script starts (``tests/support/pgcluster.py``) and maps
each connection to its process through its ``application_name`` (``litscreen-<role>:<pid>[:purpose]``, set by
``app/db/connections.py``). Three scenarios, each a real stack of processes driven over HTTP:

1. ``make up`` stack (gunicorn × 2, 1 worker at concurrency 2, maintenance worker, beat, Flower) on
   ``max_connections=100``: per process type idle and while screening ``--stack-records`` records.
2. The fleet: ``--workers`` workers × ``--concurrency`` (+ web, maintenance, beat, Flower) screening
   ``--fleet-records`` records on ``max_connections=100``.
3. The same fleet through PgBouncer (transaction mode, ``DATABASE_POOLER=pgbouncer-transaction``) on
   ``max_connections=25``: server connections.

    .venv/bin/python bench/bench_connections.py [--stack-records 520] [--fleet-records 2000] [--workers 8]
                                                [--concurrency 4] [--skip-fleet] [--skip-pgbouncer]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from tests.support.fleet import (  # noqa: E402
    TARGETS,
    TOO_MANY,
    ConnectionSampler,
    Fleet,
    fleet_env,
    over_target,
    rows,
    start_fleet,
    task_status,
)
from tests.support.pgbouncer import PgBouncer  # noqa: E402
from tests.support.pgcluster import PgCluster  # noqa: E402
from tests.support.processes import ProcessGroup  # noqa: E402
from tests.support.simulator import start_simulator  # noqa: E402

POOL_SIZE = 10  # PgBouncer server connections for pooled traffic; LISTEN connections (one per consumer) go direct
ORDER = ("web", "worker", "pool-child", "maintenance", "beat", "flower", "cli", "other")


def print_table(title: str, idle: dict[str, dict[str, int]], busy: dict[str, dict[str, int]]) -> None:
    """Per process type: processes, connections, most per process, idle and while screening, and the target."""
    print(f"\n{title}")
    print(f"{'process type':<14}{'procs':>6}{'idle total':>11}{'idle max/proc':>14}{'busy total':>11}"
          f"{'busy max/proc':>14}{'target':>8}")
    for kind in sorted(set(idle) | set(busy), key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER)):
        i, b = idle.get(kind, {}), busy.get(kind, {})
        target = TARGETS.get(kind)
        target_text = "" if target is None else (f"{target} all" if kind == "maintenance" else f"<= {target}")
        print(f"{kind:<14}{max(i.get('processes', 0), b.get('processes', 0)):>6}{i.get('connections', 0):>11}"
              f"{i.get('max_per_process', 0):>14}{b.get('connections', 0):>11}{b.get('max_per_process', 0):>14}"
              f"{target_text:>8}")
    print(f"{'total':<14}{'':>6}{sum(r['connections'] for r in idle.values()):>11}{'':>14}"
          f"{sum(r['connections'] for r in busy.values()):>11}")


def run_screening(fleet: Fleet, url: str, records: int, batch_size: int, sampler: ConnectionSampler,
                  timeout: float = 1800) -> tuple[str, float]:
    """Import ``records``, screen them, sampling connections every 0.5 s; (final status, seconds)."""
    project_id = fleet.create_project(records)
    start = time.monotonic()
    task_id = fleet.start_screening(project_id, batch_size)
    while time.monotonic() - start < timeout:
        sampler.sample()
        status = task_status(url, task_id)
        if status in ("completed", "completed_with_errors", "failed", "cancelled"):
            return status, time.monotonic() - start
        time.sleep(0.5)
    return "timeout", time.monotonic() - start


def idle_sample(sampler: ConnectionSampler, settle: float = 15.0) -> dict[str, dict[str, int]]:
    """The peak over ``settle`` seconds of an idle stack."""
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        sampler.sample()
        time.sleep(0.5)
    return {kind: dict(row) for kind, row in sampler.peak.items()}


def make_up_stack(records: int, log_dir: Path) -> None:
    with PgCluster(max_connections=100) as cluster:
        url = cluster.create_database()
        database = url.rsplit("/", 1)[1]
        log_dir.mkdir(parents=True, exist_ok=True)
        processes = ProcessGroup(log_dir)
        try:
            simulator = start_simulator(processes, latency=0.2)
            fleet = start_fleet(processes, url, fleet_env(simulator.base_url, LOG_LEVEL="WARNING",
                                                          SIM_MAX_CONCURRENCY=calls_in_flight(1, 2)),
                                workers=1, concurrency=2, web_workers=2, flower=True)
            sampler = ConnectionSampler(cluster.url(), database)
            idle = idle_sample(sampler)
            idle_total = sampler.peak_total
            busy_sampler = ConnectionSampler(cluster.url(), database)
            status, seconds = run_screening(fleet, url, records, 40, busy_sampler)
            print_table(f"make up stack (gunicorn x2, 1 worker x 2, maintenance, beat, Flower), {records} records: "
                        f"{status} in {seconds:.0f} s", idle, busy_sampler.peak)
            print(f"stack total: idle peak {idle_total} (target <= 10), screening peak {busy_sampler.peak_total} "
                  f"(target <= 15); over target: idle {over_target(idle) or 'none'}, "
                  f"screening {over_target(busy_sampler.peak) or 'none'}")
        finally:
            processes.stop_all()


def calls_in_flight(workers: int, concurrency: int) -> int:
    """The simulator provider's fleet-wide concurrency limit: 4 calls per pool child, so every child stays busy
    (the limit is shared by the whole fleet through PostgreSQL, ``LLM_LIMITS_SCOPE=fleet``)."""
    return 4 * workers * concurrency


def fleet_run(workers: int, concurrency: int, records: int, log_dir: Path, pgbouncer: bool) -> None:
    max_connections = 25 if pgbouncer else 100
    with PgCluster(max_connections=max_connections) as cluster:
        direct_url = cluster.create_database()
        database = direct_url.rsplit("/", 1)[1]
        log_dir.mkdir(parents=True, exist_ok=True)
        processes = ProcessGroup(log_dir)
        bouncer = PgBouncer(cluster, pool_size=POOL_SIZE).start() if pgbouncer else None
        try:
            simulator = start_simulator(processes, latency=0.2)
            extra = {"LOG_LEVEL": "WARNING", "SIM_MAX_CONCURRENCY": str(calls_in_flight(workers, concurrency))}
            if bouncer is not None:
                extra.update(DATABASE_DIRECT_URL=direct_url, DATABASE_POOLER="pgbouncer-transaction")
            url = bouncer.url(database) if bouncer is not None else direct_url
            fleet = start_fleet(processes, url, fleet_env(simulator.base_url, **extra), workers=workers,
                                concurrency=concurrency, web_workers=2, flower=True)
            sampler = ConnectionSampler(cluster.url(), database)
            idle_sample(sampler, settle=10)
            idle_total = sampler.peak_total
            status, seconds = run_screening(fleet, direct_url, records, 25, sampler)
            refused = (TOO_MANY in fleet.logs()) or (TOO_MANY in cluster.log.read_text(errors="replace"))
            how = f"through PgBouncer (pool_size {POOL_SIZE}) on max_connections={max_connections}" if bouncer else \
                f"direct on max_connections={max_connections}"
            print(f"\nfleet {workers} workers x {concurrency} + web x2, maintenance, beat, Flower, {how}: "
                  f"{records} records {status} in {seconds:.0f} s")
            print(f"server connections: idle peak {idle_total}, screening peak {sampler.peak_total}; "
                  f"'too many clients' in any log: {'YES' if refused else 'no'}")
            if bouncer is None:
                print_table("per process type (peak)", {}, sampler.peak)
            else:
                pooled, direct = split_by_pgbouncer(cluster, bouncer, database)
                print(f"server connections at the end: {pooled} from PgBouncer (pooled), direct: {direct}")
        finally:
            processes.stop_all()
            if bouncer is not None:
                bouncer.stop()


def split_by_pgbouncer(cluster: PgCluster, bouncer: PgBouncer, database: str) -> tuple[int, dict[str, int]]:
    """(server connections PgBouncer holds, direct connections per application_name role and purpose)."""
    assert bouncer.process is not None
    ports = {c.laddr.port for c in psutil.Process(bouncer.process.pid).net_connections("tcp")
             if c.raddr and c.raddr.port == cluster.port}
    found = rows(cluster.url(), "SELECT application_name, client_port FROM pg_stat_activity WHERE datname = %s "
                                "AND backend_type = 'client backend'", database) or []
    direct: Counter[str] = Counter()
    for name, port in found:
        if port not in ports:
            parts = (name or "other").split(":")
            direct[f"{parts[0]}{':' + parts[2] if len(parts) > 2 else ''}"] += 1
    return sum(1 for _name, port in found if port in ports), dict(direct)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack-records", type=int, default=520)
    parser.add_argument("--fleet-records", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--skip-stack", action="store_true")
    parser.add_argument("--skip-fleet", action="store_true")
    parser.add_argument("--skip-pgbouncer", action="store_true")
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-conn-"))
    print(f"logs in {log_dir}")
    if not args.skip_stack:
        make_up_stack(args.stack_records, log_dir / "stack")
    if not args.skip_fleet:
        fleet_run(args.workers, args.concurrency, args.fleet_records, log_dir / "fleet", pgbouncer=False)
    if not args.skip_pgbouncer:
        fleet_run(args.workers, args.concurrency, args.fleet_records, log_dir / "pgbouncer", pgbouncer=True)


if __name__ == "__main__":
    main()
