"""Broker benchmark: stock kombu SQLAlchemy transport vs litscreen's PostgreSQL transport vs Redis, one run.

No-op tasks (``litscreen.diagnostics.noop``, result ignored) with ``acks_late`` and prefetch 1 on one
``celery worker`` with 2 prefork processes, the product's Celery configuration otherwise (events on where the
transport allows them). For each broker:

* throughput: N tasks published at once; tasks per second from the first publish to the last task start (ours
  and Redis in alternating rounds, the median reported);
* latency: K tasks one at a time (the next published when the previous started); publish→start median and p95.

Then the idle cost of our stack (worker + beat + Flower) in PostgreSQL transactions per second
(``pg_stat_database`` xact_commit + xact_rollback delta of the broker database), next to a stock worker + beat.
Targets: ours >= 0.8 x Redis throughput, median latency <= 20 ms, idle <= 10 tx/s.

    .venv/bin/python bench/bench_broker.py [--tasks 1000] [--stock-tasks 200] [--latency-samples 100]
                                           [--idle-seconds 30] [--rounds 3] [--redis redis://127.0.0.1:6379/15]

Databases are created here (admin server from TEST_DATABASE_URL, else 127.0.0.1:5432, else embedded, as in the
tests) and dropped at the end. ``worker`` and ``measure`` as first argument are internal (one broker's worker, and
one broker's measurement in a fresh interpreter).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from app.processes import free_port  # noqa: E402  (after the sys.path line above)
from tests.support import database  # noqa: E402  (same provisioning as the test suite)

THROUGHPUT_RATIO_TARGET = 0.8
LATENCY_TARGET_MS = 20.0
IDLE_TARGET_TX_S = 10.0


def run_worker(argv: list[str]) -> None:
    """The benchmark's worker: the product's Celery app with the diagnostic tasks, stock transport options cleared
    for ``sqla+``."""
    from tasks.diagnostic_worker import app

    if str(app.conf.broker_url).startswith("sqla+"):
        app.conf.broker_transport_options = {}  # stock kombu passes every option to create_engine()
    app.worker_main(["worker", *argv])


def publisher(database_url: str, broker_url: str):  # type: ignore[no-untyped-def]
    from app import create_app

    stock = broker_url.startswith("sqla+")
    app = create_app({"DATABASE_URL": database_url, "CELERY_BROKER_URL": broker_url,
                      "CELERY_CONFIG": {"broker_transport_options": {}} if stock else {}})
    return app.extensions["celery"]


def lines(path: Path) -> list[tuple[float, float]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            out.append((float(parts[0]), float(parts[1])))
    return out


def wait_lines(path: Path, count: int, timeout: float) -> list[tuple[float, float]]:
    deadline = time.monotonic() + timeout
    while True:
        found = lines(path)
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(found)}/{count} tasks started within {timeout:.0f}s")
        time.sleep(0.002)


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=open(log, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def env_for(database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url, "CELERY_BROKER_URL": broker_url, "PYTHONUNBUFFERED": "1",
                "LOG_LEVEL": "WARNING"})
    env.update(extra)
    return env


def start_worker(database_url: str, broker_url: str, workdir: Path, name: str) -> tuple[subprocess.Popen, Path]:
    latency_file = workdir / f"{name}.latency"
    worker = start([sys.executable, str(Path(__file__).resolve()), "worker", "--concurrency", "2",
                    "--pool", "prefork", "--prefetch-multiplier", "1", "--loglevel", "WARNING",
                    "--without-mingle", "--without-gossip", "--hostname", f"{name}@%h"],
                   env_for(database_url, broker_url),
                   workdir / f"{name}.worker.log")
    return worker, latency_file


def measure(name: str, database_url: str, broker_url: str, tasks: int, samples: int, workdir: Path) -> dict:
    """Throughput and publish→start latency of one broker."""
    from app import task_names

    celery = publisher(database_url, broker_url)
    worker, latency_file = start_worker(database_url, broker_url, workdir, name)
    try:
        for _ in range(10):  # warm-up: worker ready, connections open, statements prepared
            celery.send_task(task_names.DIAG_NOOP, args=[time.time(), str(latency_file)], ignore_result=True)
        wait_lines(latency_file, 10, 120)
        latency_file.unlink()

        first_publish = time.time()
        for _ in range(tasks):
            celery.send_task(task_names.DIAG_NOOP, args=[time.time(), str(latency_file)], ignore_result=True)
        published = time.time()
        started = wait_lines(latency_file, tasks, 600)
        last_start = max(at for at, _ in started)
        latency_file.unlink()

        latencies = []
        for i in range(samples):
            celery.send_task(task_names.DIAG_NOOP, args=[time.time(), str(latency_file)], ignore_result=True)
            latencies.append(wait_lines(latency_file, i + 1, 60)[-1][1] * 1000)
            time.sleep(0.02)
    finally:
        stop(worker)
        celery.close()
    latencies.sort()
    return {"name": name, "tasks": tasks, "publish_s": published - first_publish,
            "throughput": tasks / (last_start - first_publish),
            "median_ms": statistics.median(latencies), "p95_ms": latencies[int(0.95 * (len(latencies) - 1))]}


def measure_in_subprocess(name: str, database_url: str, broker_url: str, tasks: int, samples: int,
                          workdir: Path) -> dict:
    """``measure`` in a fresh interpreter: the Celery app (and its connection pools) is one per process."""
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "measure", name, database_url, broker_url,
                          str(tasks), str(samples), str(workdir)], cwd=ROOT, capture_output=True, text=True,
                         check=False, env={**os.environ, "LOG_LEVEL": "WARNING"})
    if out.returncode != 0:
        raise RuntimeError(f"{name}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_round(runs: list[dict]) -> dict:
    """Per-field median over alternating rounds of one broker."""
    merged = dict(runs[0])
    for field in ("throughput", "median_ms", "p95_ms", "publish_s"):
        merged[field] = statistics.median(run[field] for run in runs)
    merged["rounds"] = [round(run["throughput"], 1) for run in runs]
    return merged


def transactions(admin_url: str, database_url: str) -> int:
    name = database_url.rsplit("/", 1)[-1].split("?")[0]
    with psycopg.connect(database.conninfo(admin_url), autocommit=True) as conn:
        return conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                            (name,)).fetchone()[0]


def idle_cost(label: str, admin_url: str, database_url: str, broker_url: str, seconds: float, workdir: Path,
              with_flower: bool) -> dict:
    """PostgreSQL transactions per second of an idle worker + beat (+ Flower)."""
    env = env_for(database_url, broker_url, FLOWER_BASIC_AUTH="bench:bench")
    processes = [start_worker(database_url, broker_url, workdir, f"idle-{label}")[0],
                 start([sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "WARNING",
                        "--schedule", str(workdir / f"beat-{label}")], env, workdir / f"beat-{label}.log")]
    if with_flower:
        processes.append(start([sys.executable, "-m", "celery", "-A", "tasks", "flower", "--address=127.0.0.1",
                                f"--port={free_port()}"], env, workdir / f"flower-{label}.log"))
    try:
        time.sleep(15)  # start-up, first beat ticks, Flower's first inspect
        before = transactions(admin_url, database_url)
        time.sleep(seconds)
        after = transactions(admin_url, database_url)
    finally:
        for process in processes:
            stop(process)
    return {"name": label, "tx_per_s": (after - before) / seconds, "flower": with_flower}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--stock-tasks", type=int, default=200, help="fewer for the slow stock transport")
    parser.add_argument("--latency-samples", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of ours and redis (median)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()

    import celeryconfig  # registers the litpg alias

    admin = database.admin_url()
    stock_db = database.create_database(admin)  # empty: stock kombu creates its own tables and indexes
    ours_db = database.create_database(admin)
    workdir = Path(tempfile.mkdtemp(prefix="bench-broker-"))
    try:
        from app.db.migrate import upgrade

        upgrade(ours_db)
        upgrade(stock_db)
        with psycopg.connect(database.conninfo(stock_db), autocommit=True) as conn:  # stock kombu's own tables
            conn.execute("DROP TABLE kombu_message, kombu_queue, kombu_binding CASCADE")
        import redis

        redis.Redis.from_url(args.redis).flushdb()
        stock = measure_in_subprocess("stock kombu sqla", stock_db, f"sqla+{stock_db}", args.stock_tasks,
                                      min(args.latency_samples, 30), workdir)
        rounds: dict[str, list[dict]] = {"litscreen litpg": [], "redis": []}
        for _ in range(args.rounds):  # alternate, so load from other processes hits both alike
            rounds["litscreen litpg"].append(measure_in_subprocess(
                "litscreen litpg", ours_db, celeryconfig.broker_url_for(ours_db), args.tasks,
                args.latency_samples, workdir))
            rounds["redis"].append(measure_in_subprocess("redis", ours_db, args.redis, args.tasks,
                                                         args.latency_samples, workdir))
        results = [stock, *(median_round(runs) for runs in rounds.values())]
        idle = [idle_cost("litpg", admin, ours_db, celeryconfig.broker_url_for(ours_db), args.idle_seconds,
                          workdir, with_flower=True),
                idle_cost("stock", admin, stock_db, f"sqla+{stock_db}", args.idle_seconds, workdir,
                          with_flower=False)]
    finally:
        database.drop_database(admin, stock_db)
        database.drop_database(admin, ours_db)

    redis_rate = results[2]["throughput"]
    print("\nno-op tasks, acks_late, prefetch 1, 1 worker x 2 prefork processes "
          f"(litpg and redis: median of {args.rounds} alternating rounds)")
    print(f"{'broker':<18} {'tasks':>6} {'tasks/s':>9} {'x redis':>8} {'median ms':>10} {'p95 ms':>8}  rounds tasks/s")
    for r in results:
        print(f"{r['name']:<18} {r['tasks']:>6} {r['throughput']:>9.1f} {r['throughput'] / redis_rate:>8.2f} "
              f"{r['median_ms']:>10.1f} {r['p95_ms']:>8.1f}  {r.get('rounds', '')}")
    print(f"\nidle PostgreSQL transactions/s over {args.idle_seconds:.0f} s")
    for i in idle:
        stack = "worker + beat + Flower" if i["flower"] else "worker + beat (Flower cannot work on stock)"
        print(f"{i['name']:<18} {i['tx_per_s']:>6.1f} tx/s  ({stack})")
    ours = results[1]
    print(f"\ntargets: throughput >= {THROUGHPUT_RATIO_TARGET} x redis: "
          f"{'met' if ours['throughput'] >= THROUGHPUT_RATIO_TARGET * redis_rate else 'NOT met'}; "
          f"median <= {LATENCY_TARGET_MS:.0f} ms: {'met' if ours['median_ms'] <= LATENCY_TARGET_MS else 'NOT met'}; "
          f"idle <= {IDLE_TARGET_TX_S:.0f} tx/s: {'met' if idle[0]['tx_per_s'] <= IDLE_TARGET_TX_S else 'NOT met'}")
    print(f"(logs in {workdir})")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        run_worker(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "measure":
        import celeryconfig  # noqa: F401  (registers the litpg alias)

        name_, db_, broker_, tasks_, samples_, workdir_ = sys.argv[2:8]
        print(json.dumps(measure(name_, db_, broker_, int(tasks_), int(samples_), Path(workdir_))))
    else:
        main()
