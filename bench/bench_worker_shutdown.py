"""Idle worker shutdown after SIGTERM, litpg (our PostgreSQL transport) vs Redis, side by side.

For each broker and round: start ``celery -A tasks worker --concurrency C --prefetch-multiplier 1
--without-mingle --without-gossip`` in its own session, wait until it logs ``ready.`` and then ``--settle``
seconds, send SIGTERM to the worker's whole process tree (``kill -TERM -- -PGID``, as a supervisor stopping a
process group does) and time until the main process has exited. Rounds alternate between the brokers; the median
per broker is reported with the ratio (target: litpg <= 1.2 x Redis). Every worker must exit by itself (within
``--timeout``) with status 0; a worker that had to be killed is reported as a failure.

    .venv/bin/python bench/bench_worker_shutdown.py [--rounds 5] [--concurrency 1 2] [--settle 5]
                                                    [--redis redis://127.0.0.1:6379/15]

The PostgreSQL database is created here (admin server from TEST_DATABASE_URL, else 127.0.0.1:5432, else
embedded, as in the tests) and dropped at the end. Redis is used only here, as the yardstick.
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

from tests.support import database  # noqa: E402  (same provisioning as the test suite)

RATIO_TARGET = 1.2


def worker_env(database_url: str, broker_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url, "CELERY_BROKER_URL": broker_url, "PYTHONUNBUFFERED": "1"})
    return env


def one_shutdown(database_url: str, broker_url: str, concurrency: int, settle: float, timeout: float,
                 log: Path) -> dict:
    """Start an idle worker, SIGTERM its process group once it is ready, and time its exit."""
    args = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
            "--concurrency", str(concurrency), "--prefetch-multiplier", "1", "--without-mingle", "--without-gossip"]
    with open(log, "wb") as out:
        process = subprocess.Popen(args, env=worker_env(database_url, broker_url), cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while b"ready." not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"worker did not start; see {log}")
        time.sleep(0.05)
    time.sleep(settle)
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGTERM)
    try:
        returncode = process.wait(timeout=timeout)
        seconds = time.monotonic() - started
        wedged = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        returncode = process.wait()
        seconds = timeout
        wedged = True
    try:  # pool children left behind would be a failure too
        os.killpg(process.pid, 0)
        leftovers = True
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        leftovers = False
    return {"seconds": seconds, "returncode": returncode, "wedged": wedged, "leftover_children": leftovers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle after 'ready.' before SIGTERM")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()

    import celeryconfig
    from app.db.migrate import upgrade

    admin = database.admin_url()
    db_url = database.create_database(admin)
    brokers = {"litpg": celeryconfig.broker_url_for(db_url), "redis": args.redis}
    results: dict[str, dict[str, list[dict]]] = {str(c): {b: [] for b in brokers} for c in args.concurrency}
    try:
        upgrade(db_url)
        with tempfile.TemporaryDirectory() as tmp:
            for concurrency in args.concurrency:
                for round_no in range(args.rounds):
                    for name, broker_url in brokers.items():
                        log = Path(tmp) / f"{name}-c{concurrency}-{round_no}.log"
                        result = one_shutdown(db_url, broker_url, concurrency, args.settle, args.timeout, log)
                        results[str(concurrency)][name].append(result)
                        print(f"c={concurrency} round {round_no + 1} {name}: {json.dumps(result)}", flush=True)
    finally:
        database.drop_database(admin, db_url)

    summary = {}
    for concurrency, per_broker in results.items():
        medians = {name: statistics.median(r["seconds"] for r in runs) for name, runs in per_broker.items()}
        failures = {name: sum(1 for r in runs if r["wedged"] or r["returncode"] != 0 or r["leftover_children"])
                    for name, runs in per_broker.items()}
        ratio = medians["litpg"] / medians["redis"]
        summary[f"concurrency {concurrency}"] = {
            "median_exit_s": {k: round(v, 3) for k, v in medians.items()}, "ratio": round(ratio, 2),
            "failures": failures, "target_met": ratio <= RATIO_TARGET and not any(failures.values()),
        }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
