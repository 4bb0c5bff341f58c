"""Worker memory over many runs: does a pool child's RSS level off, or grow with every record it screens?

A real stack (gunicorn, one ``celery worker --concurrency 1``, maintenance worker, beat) on a private PostgreSQL
(``tests/support/pgcluster.py``) and the LLM simulator (``--latency`` seconds per answer, LLM cache off) screens
``--runs`` runs of ``--records`` records one after the other; after each run it prints the RSS of the worker's main
process and of its pool child, and the child's ``[heap]`` (C code's ``malloc``) and anonymous mappings (Python's
object arenas, large blocks). ``--env NAME=VALUE`` sets a variable for every process of the stack, e.g.
``MALLOC_ARENA_MAX=2`` or ``PSYCOPG_IMPL=python`` to rule a suspect in or out.

    .venv/bin/python bench/bench_worker_rss.py [--runs 6] [--records 1500] [--latency 0.02] [--env NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from tests.support.fleet import fleet_env, start_fleet, wait_final  # noqa: E402
from tests.support.pgcluster import PgCluster  # noqa: E402
from tests.support.processes import ProcessGroup  # noqa: E402
from tests.support.simulator import start_simulator  # noqa: E402


def megabytes(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


def heap_megabytes(process: psutil.Process) -> str:
    """RSS of the process's malloc heap (``[heap]``) and of its anonymous mappings (arenas, large blocks)."""
    heap = anon = 0
    for mapping in process.memory_maps(grouped=True):
        if mapping.path == "[heap]":
            heap += mapping.rss
        elif not mapping.path or mapping.path.startswith("[anon"):
            anon += mapping.rss
    return f"{heap / 2**20:.1f} | {anon / 2**20:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--records", type=int, default=1500)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for every process of the stack (repeatable)")
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    print(f"logs in {log_dir}")
    with PgCluster(max_connections=100) as cluster:
        url = cluster.create_database()
        processes = ProcessGroup(log_dir)
        try:
            simulator = start_simulator(processes, latency=args.latency)
            extra = {"LOG_LEVEL": "WARNING", "SIM_MAX_CONCURRENCY": "8"}
            extra.update(item.split("=", 1) for item in args.env)
            fleet = start_fleet(processes, url, fleet_env(simulator.base_url, **extra), workers=1, concurrency=1,
                                web_workers=1, flower=False)
            worker = psutil.Process(fleet.started["worker0"].pid)
            (child,) = worker.children()
            print("| after | records screened | worker main MB | pool child MB | child [heap] MB | child anon MB |\n"
                  "|---|---:|---:|---:|---:|---:|")
            print(f"| start | 0 | {megabytes(worker):.1f} | {megabytes(child):.1f} | {heap_megabytes(child)} |",
                  flush=True)
            for run in range(1, args.runs + 1):
                task_id = fleet.start_screening(fleet.create_project(args.records), 50)
                status = wait_final(url, task_id, timeout=900)
                print(f"| run {run} ({status}) | {run * args.records} | {megabytes(worker):.1f} | "
                      f"{megabytes(child):.1f} | {heap_megabytes(child)} |", flush=True)
        finally:
            processes.stop_all()


if __name__ == "__main__":
    main()
