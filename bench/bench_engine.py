"""Screening-engine benchmark: engine overhead (PostgreSQL broker vs Redis broker), LLM-bound scaling,
checkpoint commit latency and worker memory, in one run.

* Overhead: N records (default 10,000), simulator latency 0, LLM cache off, 2 ``celery worker`` processes
  (``--concurrency 1`` each). Records/s from the start request to the task's final status; worker CPU seconds
  (user + system of each worker's whole process tree, the simulator excluded) per record. The same workload again
  with ``CELERY_BROKER_URL=redis://…`` (publisher and workers) in the same run: the ratio.
* Checkpoint commit latency: every batch returns the duration of each of its checkpoint transactions (results
  + cursor + counters + lease in one commit) in its Celery result; p50 / p99 over all of them.
* Worker RSS: the sum over both worker trees at the start and at the end of the PostgreSQL overhead run.
* LLM-bound: simulator latency 1 s, ``SIM_MAX_CONCURRENCY`` calls in flight per worker process, two models per
  record, so the provider limit is ``workers × SIM_MAX_CONCURRENCY / (2 × latency)`` records/s; measured with
  2 and then 4 workers.

    .venv/bin/python bench/bench_engine.py [--records 10000] [--bound-records 200] [--redis redis://127.0.0.1:6379/14]
                                           [--skip-bound]   # only the overhead runs (PostgreSQL and Redis broker)
    .venv/bin/python bench/bench_engine.py --llm-layer [--llm-records 3000]

``--llm-layer`` measures only the LLM layer, in this process: CPU per record of ``Screener.screen`` (two models,
real HTTP to a simulator subprocess with latency 0), with 1 and with 4 records in flight, LLM cache off, then
with the PostgreSQL cache on (every record a miss: one lookup, two calls, two writes; then the same records
again: all hits).

The database is created here (same provisioning as the tests) and dropped at the end; the Redis database is
flushed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from tests.support import database  # noqa: E402

LISTENING = re.compile(r"llm-simulator listening on (http://[\d.]+:\d+/v1)")
MODELS = "sim:model-a,sim:model-b"
OVERHEAD_CONCURRENCY = 4  # records in flight per worker process in the overhead runs (SIM_MAX_CONCURRENCY)
TITLE = "Nudging physicians with default options in electronic prescribing: a randomised trial {i}"
ABSTRACT = ("Background: choice architecture and reminders may change prescribing of healthcare professionals. "
            "Methods: cluster randomised controlled trial in primary care; nurses and pharmacists received "
            "feedback. Outcomes: guideline adherence and evidence-based practice. Record {i}.")


def start_simulator(latency: float, log_dir: Path) -> tuple[subprocess.Popen, str]:
    log = log_dir / f"sim-{latency}.log"
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "llm-simulator", "--host", "127.0.0.1",
                                "--port", "0", "--latency", str(latency)], cwd=ROOT,
                               stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = LISTENING.search(log.read_text(errors="replace"))
        if match:
            return process, match.group(1)
        time.sleep(0.05)
    raise RuntimeError("simulator did not start")


def worker_env(database_url: str, sim_url: str, broker: str | None, concurrency: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url, "SCREENING_MODELS": MODELS, "SIM_BASE_URL": sim_url,
                "LLM_CACHE": "off", "SIM_MAX_CONCURRENCY": str(concurrency), "LOG_LEVEL": "WARNING",
                # per-process limits: this bench measures the engine's scaling (bench_fleet_limits.py the fleet's)
                "LLM_LIMITS_SCOPE": "process",
                "PYTHONUNBUFFERED": "1"})
    if broker:
        env["CELERY_BROKER_URL"] = broker
    else:
        env.pop("CELERY_BROKER_URL", None)
    return env


def start_workers(count: int, env: dict[str, str], log_dir: Path, tag: str) -> list[subprocess.Popen]:
    workers = []
    for index in range(count):
        args = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "WARNING",
                "--hostname", f"bench{index}-{tag}@%h", "--concurrency", "1", "--prefetch-multiplier", "1",
                "--without-mingle", "--without-gossip"]
        workers.append(subprocess.Popen(args, cwd=ROOT, env=env, stdout=open(log_dir / f"w{index}-{tag}.log", "wb"),
                                        stderr=subprocess.STDOUT, start_new_session=True))
    return workers


def tree(process: subprocess.Popen) -> list[psutil.Process]:
    parent = psutil.Process(process.pid)
    return [parent, *parent.children(recursive=True)]


def cpu_seconds(workers: list[subprocess.Popen]) -> float:
    total = 0.0
    for worker in workers:
        for proc in tree(worker):
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
    return total


def rss_mb(workers: list[subprocess.Popen]) -> float:
    total = 0
    for worker in workers:
        for proc in tree(worker):
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
    return total / 1e6


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def make_app(database_url: str, sim_url: str, broker: str | None, concurrency: int):  # type: ignore[no-untyped-def]
    from app import create_app

    config: dict[str, Any] = {"DATABASE_URL": database_url, "SCREENING_MODELS": MODELS, "SIM_BASE_URL": sim_url,
                              "LLM_CACHE": "off", "SIM_MAX_CONCURRENCY": str(concurrency),
                              "CELERY_BROKER_URL": broker}
    return create_app(config)


def wait_ready(app: Any, count: int, timeout: float = 90) -> None:
    """Wait until ``count`` workers answer a ping task each (they are consuming)."""
    from app import task_names

    celery = app.extensions["celery"]
    with app.app_context():
        results = [celery.send_task(task_names.PING, args=[i]) for i in range(count * 2)]
        for result in results:
            result.get(timeout=timeout)


def run_task(app: Any, project_id: int, batch_size: int | None) -> dict[str, Any]:
    """Start a run and wait for its final status; wall seconds and the task row."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Project, ScreeningBatch, ScreeningTask
    from app.services.engine import engine_context, start_task
    from app.services.kinds import TaskScope

    with app.app_context():
        session = db.session()
        project = session.get(Project, project_id)
        started = time.perf_counter()
        task = start_task(engine_context(app), session, "title_abstract", TaskScope(project.owner_id, project.id),
                          batch_size)
        task_id = task.id
        while True:
            session.expire_all()
            task = session.get(ScreeningTask, task_id)
            if task.status in ("completed", "completed_with_errors", "failed", "cancelled"):
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        ids = list(session.scalars(select(ScreeningBatch.celery_task_id).where(ScreeningBatch.task_id == task_id)))
        celery = app.extensions["celery"]
        checkpoints: list[float] = []
        for celery_id in ids:
            result = celery.AsyncResult(celery_id).result
            if isinstance(result, dict):
                checkpoints += result.get("checkpoint_ms", [])
        return {"task_id": task_id, "status": task.status, "items": task.processed_items, "seconds": seconds,
                "checkpoints": checkpoints}


def overhead_run(database_url: str, project_id: int, records: int, broker: str | None, log_dir: Path,
                 tag: str) -> dict[str, Any]:
    sim, sim_url = start_simulator(0.0, log_dir)
    workers = start_workers(2, worker_env(database_url, sim_url, broker, OVERHEAD_CONCURRENCY), log_dir, tag)
    try:
        app = make_app(database_url, sim_url, broker, OVERHEAD_CONCURRENCY)
        wait_ready(app, 2)
        cpu_before, rss_before = cpu_seconds(workers), rss_mb(workers)
        outcome = run_task(app, project_id, None)
        cpu_after, rss_after = cpu_seconds(workers), rss_mb(workers)
    finally:
        stop([*workers, sim])
    outcome.update(cpu_ms_per_record=(cpu_after - cpu_before) * 1000 / max(1, outcome["items"]),
                   records_per_s=outcome["items"] / outcome["seconds"], rss_start=rss_before, rss_end=rss_after)
    return outcome


def bound_run(database_url: str, project_id: int, workers_count: int, concurrency: int, latency: float,
              log_dir: Path) -> dict[str, Any]:
    sim, sim_url = start_simulator(latency, log_dir)
    workers = start_workers(workers_count, worker_env(database_url, sim_url, None, concurrency), log_dir,
                            f"bound{workers_count}")
    try:
        app = make_app(database_url, sim_url, None, concurrency)
        wait_ready(app, workers_count)
        outcome = run_task(app, project_id, 25)
    finally:
        stop([*workers, sim])
    limit = workers_count * concurrency / (2 * latency)
    outcome.update(records_per_s=outcome["items"] / outcome["seconds"], limit=limit)
    return outcome


def in_child(kind: str, *args: Any) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (Celery caches its broker connection per process)."""
    out = subprocess.run([sys.executable, __file__, "_run", kind, json.dumps(args)], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_main(kind: str, raw_args: str) -> None:
    args = json.loads(raw_args)
    outcome = overhead_run(*args[:3], args[3], Path(args[4]), args[5]) if kind == "overhead" else \
        bound_run(args[0], args[1], args[2], args[3], args[4], Path(args[5]))
    print(json.dumps(outcome))


def make_project(app: Any, count: int, name: str) -> int:
    from app.extensions import db
    from app.models import Project, User
    from app.services.literature import import_records

    with app.app_context():
        session = db.session()
        user = session.query(User).filter_by(name="bench").one_or_none()
        if user is None:
            user = User(name="bench")
            session.add(user)
            session.commit()
        project = Project(owner_id=user.id, name=name,
                          picos={"P": "healthcare professionals physicians nurses pharmacists",
                                 "I": "nudges defaults reminders feedback choice architecture",
                                 "C": "usual care", "O": "prescribing guideline adherence",
                                 "S": "randomised controlled trials"})
        session.add(project)
        session.commit()
        import_records(session, project, [{"title": TITLE.format(i=i), "abstract": ABSTRACT.format(i=i),
                                           "doi": f"10.5555/{name}.{i}"} for i in range(count)])
        return project.id


def llm_layer_run(records: int, log_dir: Path) -> list[tuple[str, int, float, float]]:
    """(case, records in flight, CPU ms/record of this process, records/s) of ``Screener.screen`` alone."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import create_engine

    from app.db.migrate import upgrade
    from app.services.record_screening import (
        Criteria,
        RecordText,
        build_screener,
        model_config_snapshot,
        open_llm_cache,
    )

    sim, sim_url = start_simulator(0.0, log_dir)
    admin = database.admin_url()
    url = database.create_database(admin)
    rows: list[tuple[str, int, float, float]] = []
    try:
        upgrade(url)
        engine = create_engine(url, pool_pre_ping=True)
        criteria = Criteria({"P": "healthcare professionals physicians nurses pharmacists",
                             "I": "nudges defaults reminders feedback choice architecture", "C": "usual care",
                             "O": "prescribing guideline adherence", "S": "randomised controlled trials"})

        def measure(case: str, cache: str, threads: int, items: list[Any], repeat: int = 1) -> None:
            config = {"SCREENING_MODELS": MODELS, "SIM_BASE_URL": sim_url, "SIM_MAX_CONCURRENCY": str(threads),
                      "LLM_CACHE": cache, "SQLALCHEMY_DATABASE_URI": url}
            screener = build_screener(model_config_snapshot(config), config, open_llm_cache(config, engine))
            try:
                for record in items[:50]:  # warm-up: connections, imports, compiled statements
                    screener.screen(criteria, record)
                for round_ in range(repeat):
                    cpu, wall = time.process_time(), time.perf_counter()
                    with ThreadPoolExecutor(threads) as pool:
                        results = list(pool.map(lambda r: screener.screen(criteria, r), items[50:]))
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                    if any(r.failed for r in results):
                        raise RuntimeError("a record failed in the LLM-layer benchmark")
                    label = case if repeat == 1 else f"{case}, {'misses' if round_ == 0 else 'hits'}"
                    rows.append((label, threads, cpu * 1000 / records, records / wall))
            finally:
                screener.close()

        def items(tag: str) -> list[Any]:
            return [RecordText(i, TITLE.format(i=f"{tag}{i}"), ABSTRACT.format(i=f"{tag}{i}"))
                    for i in range(records + 50)]

        measure("LLM cache off", "off", 1, items("a"))
        measure("LLM cache off", "off", 4, items("b"))
        measure("PostgreSQL LLM cache", "on", 4, items("c"), repeat=2)
    finally:
        stop([sim])
        database.drop_database(admin, url)
    return rows


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--bound-records", type=int, default=200)
    parser.add_argument("--bound-concurrency", type=int, default=4)
    parser.add_argument("--bound-latency", type=float, default=1.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--skip-bound", action="store_true", help="only the overhead runs (no LLM-bound runs)")
    parser.add_argument("--llm-layer", action="store_true", help="only Screener.screen's CPU per record, in process")
    parser.add_argument("--llm-records", type=int, default=3000)
    args = parser.parse_args()

    if args.llm_layer:
        rows = llm_layer_run(args.llm_records, Path(tempfile.mkdtemp(prefix="bench-llm-layer-")))
        print(f"\nLLM layer alone (Screener.screen, 2 models, simulator latency 0), {args.llm_records} records a row")
        print("| case | records in flight | CPU ms/record (this process) | records/s |")
        print("|---|---:|---:|---:|")
        for case, threads, cpu_ms, rate in rows:
            print(f"| {case} | {threads} | {cpu_ms:.2f} | {rate:.0f} |")
        return

    import redis

    from app.db.migrate import upgrade

    admin = database.admin_url()
    url = database.create_database(admin)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    redis_client = redis.Redis.from_url(args.redis)
    redis_client.flushdb()
    try:
        upgrade(url)
        app = make_app(url, "http://127.0.0.1:9/v1", None, 8)
        overhead_project = make_project(app, args.records, "overhead")
        bound_project = make_project(app, args.bound_records, "bound")

        pg = in_child("overhead", url, overhead_project, args.records, None, str(log_dir), "pg")
        rd = in_child("overhead", url, overhead_project, args.records, args.redis, str(log_dir), "redis")
        bound2 = bound4 = None
        if not args.skip_bound:
            bound2 = in_child("bound", url, bound_project, 2, args.bound_concurrency, args.bound_latency,
                              str(log_dir))
            bound4 = in_child("bound", url, bound_project, 4, args.bound_concurrency, args.bound_latency,
                              str(log_dir))
    finally:
        database.drop_database(admin, url)
        redis_client.flushdb()

    print(f"\nEngine overhead: {args.records} records, simulator latency 0, 2 workers x 1 process, LLM cache off, "
          f"SIM_MAX_CONCURRENCY={OVERHEAD_CONCURRENCY}, defaults otherwise (100 records a batch, CHECKPOINT_EVERY 10)")
    print("| broker | status | records | seconds | records/s | worker CPU ms/record | worker RSS MB start → end |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, run in (("PostgreSQL (litpg)", pg), ("Redis", rd)):
        print(f"| {name} | {run['status']} | {run['items']} | {run['seconds']:.1f} | {run['records_per_s']:.0f} | "
              f"{run['cpu_ms_per_record']:.2f} | {run['rss_start']:.0f} → {run['rss_end']:.0f} |")
    print(f"\nPostgreSQL / Redis throughput ratio: {pg['records_per_s'] / rd['records_per_s']:.2f} (target ≥ 0.9); "
          f"CPU target ≤ 2 ms/record")
    print("\nCheckpoint commits (one transaction: results + cursor + counters + lease), target p99 ≤ 10 ms")
    print("| run | checkpoints | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for name, run in (("overhead, PostgreSQL broker (CPU saturated)", pg), ("overhead, Redis broker", rd),
                      ("LLM-bound, 2 workers", bound2), ("LLM-bound, 4 workers", bound4)):
        if run is None:
            continue
        cps = run["checkpoints"]
        if cps:
            print(f"| {name} | {len(cps)} | {statistics.median(cps):.2f} | {percentile(cps, 0.99):.2f} | "
                  f"{max(cps):.2f} |")
    if bound2 is None or bound4 is None:
        return
    print(f"\nLLM-bound: {args.bound_records} records, simulator latency {args.bound_latency:.1f} s, "
          f"SIM_MAX_CONCURRENCY={args.bound_concurrency} per worker process, batches of 25")
    print("| workers | seconds | records/s | provider limit records/s | ratio |")
    print("|---:|---:|---:|---:|---:|")
    for count, run in ((2, bound2), (4, bound4)):
        print(f"| {count} | {run['seconds']:.1f} | {run['records_per_s']:.2f} | {run['limit']:.2f} | "
              f"{run['records_per_s'] / run['limit']:.2f} |")
    print(f"\nSpeed-up 2 → 4 workers: {bound4['records_per_s'] / bound2['records_per_s']:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_run":
        child_main(sys.argv[2], sys.argv[3])
    else:
        main()
