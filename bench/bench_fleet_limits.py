"""Fleet-wide provider limits: 8 worker processes share one requests-per-minute limit through PostgreSQL.

Counted at the provider (the simulator): the busiest 60-second window of request arrivals against the limit, and
the throughput between the first and the last request against the limit (target ≥ 0.9). The same workload with
``LLM_LIMITS_SCOPE=process`` (each process applies the whole limit to itself, as before) is the comparison.

    .venv/bin/python bench/bench_fleet_limits.py [--workers 8] [--rpm 1200] [--records 1200] [--latency 0.4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_engine as eng  # noqa: E402

from tests.support import database  # noqa: E402


def run(scope: str, args: argparse.Namespace, database_url: str, log_dir: Path) -> dict[str, float]:
    sim, sim_url = eng.start_simulator(args.latency, log_dir)
    env = eng.worker_env(database_url, sim_url, None, args.in_flight)
    env.update({"LLM_LIMITS_SCOPE": scope, "SIM_RPM": str(args.rpm)})
    workers = eng.start_workers(args.workers, env, log_dir, f"limits-{scope}")
    try:
        app = eng.make_app(database_url, sim_url, None, args.in_flight)
        eng.wait_ready(app, args.workers)
        project_id = eng.make_project(app, args.records, f"limits-{scope}-{time.time_ns()}")
        httpx.delete(f"{sim_url}/stats", timeout=5)
        outcome = eng.run_task(app, project_id, 10)
        stats = httpx.get(f"{sim_url}/stats", params={"window": 60}, timeout=30).json()
    finally:
        eng.stop([*workers, sim])
    calls = int(stats["calls_total"])
    rate = calls / outcome["seconds"]
    return {"calls": calls, "seconds": outcome["seconds"], "busiest_60s": stats["max_calls_in_window"],
            "rate_per_s": rate, "limit_per_s": args.rpm / 60, "max_in_flight": stats.get("max_in_flight", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--records", type=int, default=1200)
    parser.add_argument("--latency", type=float, default=0.4)
    args = parser.parse_args()
    admin = database.admin_url()
    url = database.create_database(admin)
    from app.db.migrate import upgrade

    upgrade(url)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for scope in ("fleet", "process"):
                rows.append((scope, run(scope, args, url, Path(tmp))))
    finally:
        database.drop_database(admin, url)
    print(f"{args.workers} workers, limit {args.rpm} requests/min ({args.rpm / 60:.1f}/s), in flight "
          f"{args.in_flight}, latency {args.latency} s, {args.records} records x 2 models")
    print(f"{'scope':<8} {'calls':>6} {'seconds':>8} {'busiest 60 s':>13} {'limit 60 s':>11} {'rate/s':>7} "
          f"{'of limit':>9} {'max in flight':>14}")
    for scope, r in rows:
        print(f"{scope:<8} {r['calls']:>6} {r['seconds']:>8.1f} {r['busiest_60s']:>13} {args.rpm:>11} "
              f"{r['rate_per_s']:>7.2f} {r['rate_per_s'] / r['limit_per_s']:>9.2f} {r['max_in_flight']:>14}")


if __name__ == "__main__":
    main()
