"""Soak: a long run of the whole fleet under LLM errors, worker kills and a server restart.

``--records`` (10,000) records, ``--workers`` (8) workers × ``--concurrency`` (4) + web, maintenance worker,
beat and Flower, on a private PostgreSQL with ``max_connections=100`` (``tests/support/pgcluster.py``). The
simulator answers 20 % of calls with a 500 and 10 % with a 429 (Retry-After 1 s) and takes ``--latency`` seconds
per answer (2 s: the run lasts about 15 minutes). Every ``--kill-every`` seconds (60) a random screening worker
gets ``kill -9`` (its whole tree) and a supervisor-style replacement is started; once, when half the records are
done, the server is restarted (``pg_ctl restart -m fast``). Prints:

* success rate: records whose result is ``success`` / records (target > 99.5 %);
* records repeated: result rows beyond one per record (target 0);
* tasks recovered: batches that a kill interrupted and that were later done (target 100 %), and the task's status;
* peak connections (``pg_stat_activity``) and whether "too many clients" appears in any log;
* worker RSS of ``worker0``, the one worker never killed, at the start (idle), after ``--warm-up`` seconds of
  screening (300) and at the end (flat), and every 60 s while it runs.

    .venv/bin/python bench/bench_soak.py [--records 10000] [--workers 8] [--concurrency 4] [--latency 2.0]
                                         [--kill-every 60] [--timeout 2400] [--seed 9] [--warm-up 300]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from tests.support.fleet import (  # noqa: E402
    FINAL,
    TOO_MANY,
    ConnectionSampler,
    Fleet,
    fleet_env,
    results_so_far,
    rows,
    start_fleet,
    task_status,
)
from tests.support.pgcluster import PgCluster  # noqa: E402
from tests.support.processes import ProcessGroup  # noqa: E402
from tests.support.simulator import start_simulator  # noqa: E402

WITNESS = "worker0"  # never killed: its RSS over the whole run is the memory figure


def tree_pids(process: subprocess.Popen) -> set[int]:
    try:
        parent = psutil.Process(process.pid)
        return {parent.pid} | {child.pid for child in parent.children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def tree_rss_mb(process: subprocess.Popen) -> float:
    total = 0
    for pid in tree_pids(process):
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 1e6


def lease_pid(owner: str) -> int | None:
    """The pid in a lease owner (``host:pid[:nonce]``)."""
    parts = owner.split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def batches_held_by(url: str, task_id: int, pids: set[int]) -> set[int]:
    found = rows(url, "SELECT batch_index, lease_owner FROM screening_batches WHERE task_id = %s "
                      "AND status = 'running' AND lease_owner IS NOT NULL", task_id) or []
    return {index for index, owner in found if lease_pid(owner) in pids}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--kill-every", type=float, default=60.0)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=2400.0)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--warm-up", type=float, default=300.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    print(f"logs in {log_dir}")

    with PgCluster(max_connections=100) as cluster:
        url = cluster.create_database()
        database = url.rsplit("/", 1)[1]
        processes = ProcessGroup(log_dir)
        try:
            simulator = start_simulator(processes, latency=args.latency, error_rate=0.2, rate_limit_rate=0.1,
                                        retry_after=1, seed=args.seed)
            # 2 calls in flight per pool child: the provider limit is shared by the fleet (LLM_LIMITS_SCOPE=fleet)
            in_flight = 2 * args.workers * args.concurrency
            env = fleet_env(simulator.base_url, LOG_LEVEL="WARNING", SIM_MAX_CONCURRENCY=in_flight, LLM_MAX_ATTEMPTS=8,
                            LLM_RETRY_MAX_SECONDS=2, LEASE_TTL_SECONDS=30, SWEEP_INTERVAL_SECONDS=5,
                            DISPATCH_GRACE_SECONDS=30, SCREENING_RETRY_BACKOFF_SECONDS=5)
            fleet = start_fleet(processes, url, env, workers=args.workers, concurrency=args.concurrency)
            soak(fleet, cluster, url, database, args, rng)
        finally:
            processes.stop_all()


def soak(fleet: Fleet, cluster: PgCluster, url: str, database: str, args: argparse.Namespace,
         rng: random.Random) -> None:
    sampler = ConnectionSampler(cluster.url(), database)
    time.sleep(10)
    original = dict(fleet.started)
    rss_start = {name: tree_rss_mb(p) for name, p in original.items() if name.startswith("worker")}
    project_id = fleet.create_project(args.records)
    start = time.monotonic()
    task_id = fleet.start_screening(project_id, args.batch_size)
    killed_names: set[str] = set()
    interrupted: set[int] = set()
    kills = 0
    restarted = False
    next_kill = start + args.kill_every
    next_rss = start + 60
    rss_warm: dict[str, float] = {}
    replacement = 0
    while time.monotonic() - start < args.timeout:
        sampler.sample()
        if time.monotonic() >= next_rss:
            witness_mb = tree_rss_mb(original[WITNESS])
            print(f"{time.monotonic() - start:6.0f} s: {WITNESS} RSS {witness_mb:.0f} MB "
                  f"({results_so_far(url, task_id)} results)", flush=True)
            if not rss_warm and time.monotonic() - start >= args.warm_up:
                rss_warm = {name: tree_rss_mb(p) for name, p in original.items()
                            if name.startswith("worker") and name not in killed_names and p.poll() is None}
            next_rss += 60
        status = task_status(url, task_id)
        if status in FINAL:
            break
        now = time.monotonic()
        if now >= next_kill:
            live = [name for name in fleet.started if name.startswith("worker") and name != WITNESS
                    and fleet.started[name].poll() is None]
            victim_name = rng.choice(live)
            victim = fleet.started[victim_name]
            held = batches_held_by(url, task_id, tree_pids(victim))
            ProcessGroup.kill_tree(victim)
            victim.wait(timeout=30)
            interrupted |= held
            killed_names.add(victim_name)
            kills += 1
            replacement += 1
            fleet.start_worker(f"worker-r{replacement}", args.concurrency)
            print(f"{now - start:6.0f} s: kill -9 {victim_name} (held batches {sorted(held)}), "
                  f"started worker-r{replacement}", flush=True)
            next_kill = now + args.kill_every
        if not restarted and results_so_far(url, task_id) >= args.records // 2:
            cluster.restart()
            restarted = True
            print(f"{time.monotonic() - start:6.0f} s: pg_ctl restart -m fast", flush=True)
        time.sleep(1)
    seconds = time.monotonic() - start
    status = task_status(url, task_id)
    rss_end = {name: tree_rss_mb(p) for name, p in original.items()
               if name.startswith("worker") and name not in killed_names and p.poll() is None}
    report(fleet, cluster, url, task_id, args, status, seconds, kills, restarted, interrupted, sampler,
           rss_start, rss_end, rss_warm)


def report(fleet: Fleet, cluster: PgCluster, url: str, task_id: int, args: argparse.Namespace, status: str | None,
           seconds: float, kills: int, restarted: bool, interrupted: set[int], sampler: ConnectionSampler,
           rss_start: dict[str, float], rss_end: dict[str, float], rss_warm: dict[str, float]) -> None:
    (total, distinct, success), = rows(
        url, "SELECT count(*), count(DISTINCT literature_id), count(*) FILTER (WHERE status = 'success') "
             "FROM screening_results WHERE task_id = %s", task_id) or [(0, 0, 0)]
    done = {index for (index,) in rows(url, "SELECT batch_index FROM screening_batches WHERE task_id = %s "
                                            "AND status = 'done'", task_id) or []}
    recovered = len(interrupted & done)
    refused = TOO_MANY in fleet.logs() or TOO_MANY in cluster.log.read_text(errors="replace")
    exited = {name: code for name, code in fleet.exited().items() if not name.startswith("worker")}
    kept = sorted(rss_end)
    start_mb = sum(rss_start[name] for name in kept) / max(1, len(kept))
    end_mb = sum(rss_end[name] for name in kept) / max(1, len(kept))
    warm = [name for name in kept if name in rss_warm]
    warm_mb = f"{sum(rss_warm[name] for name in warm) / len(warm):.0f}" if warm else "-"
    print(f"\nsoak: {args.records} records, {args.workers} workers x {args.concurrency}, simulator latency "
          f"{args.latency} s, 20 % 500 + 10 % 429, kill -9 every {args.kill_every:.0f} s, seed {args.seed}")
    print("| figure | value | target |\n|---|---|---|")
    print(f"| duration | {seconds / 60:.1f} min, task {status} | ~15 min, completed |")
    print(f"| success rate | {100 * success / max(1, args.records):.2f} % ({success}/{args.records}) | > 99.5 % |")
    print(f"| records with a result | {distinct} | {args.records} |")
    print(f"| records repeated | {total - distinct} | 0 |")
    print(f"| worker kills / server restarts | {kills} / {1 if restarted else 0} | every {args.kill_every:.0f} s / 1 |")
    print(f"| interrupted batches recovered | {recovered}/{len(interrupted)} "
          f"({100 * recovered / max(1, len(interrupted)):.0f} %) | 100 % |")
    print(f"| peak connections | {sampler.peak_total} of 100 | headroom |")
    print(f"| 'too many clients' in any log | {'yes' if refused else 'no'} | no |")
    print(f"| non-worker processes exited | {exited or 'none'} | none |")
    print(f"| worker RSS start -> after {args.warm_up:.0f} s -> end ({', '.join(kept)}: main + pool children) | "
          f"{start_mb:.0f} -> {warm_mb} -> {end_mb:.0f} MB | flat |")


if __name__ == "__main__":
    main()
