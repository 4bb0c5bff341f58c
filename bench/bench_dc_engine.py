"""Extraction engine benchmark: records per second of a ``dc_extraction`` run against its LLM-bound ideal.

The simulator answers every call after ``--latency`` seconds; a record takes two calls (two models, in parallel).
With ``--limits-scope process`` (the default here) each worker process lets ``SIM_MAX_CONCURRENCY`` calls be in
flight, so the provider limit is ``workers × SIM_MAX_CONCURRENCY / latency`` calls/s, half that in records/s; with
``fleet`` (the product's default ``LLM_LIMITS_SCOPE``: dc_extraction's clients share the limit through PostgreSQL)
the whole fleet has ``SIM_MAX_CONCURRENCY`` in flight, ``SIM_MAX_CONCURRENCY / latency`` calls/s.
The run: the ACI-Bench fixture's notes cycled to ``--records`` rows, uploaded through the service, a six-field
schema, LLM cache off, 2 real ``celery worker`` processes (``--concurrency 1``). Measured from the start request to the task's final status (worker start-up excluded: the workers are up first); the
``breakdown`` splits the shortfall into in-batch efficiency and worker utilisation (``bench/engine_report.py``).

    .venv/bin/python bench/bench_dc_engine.py [--records 240] [--latency 0.5] [--sim-concurrency 4]
        [--limits-scope process|fleet]
"""  # noqa: E501

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_report import batch_breakdown, start_engine_stack  # noqa: E402
from tests.support import database  # noqa: E402
from tests.support.engine import query, simulator_calls, wait_final  # noqa: E402
from tests.support.processes import ProcessGroup, wait_for  # noqa: E402
from tests.support.simulator import start_simulator  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "clinical" / "aci_bench_30.csv"
SCHEMA = {"fields": [
    {"name": "age", "type": "integer", "description": "Patient age in years", "required": True},
    {"name": "sex", "type": "enum", "enum": ["male", "female"], "description": "Patient sex", "required": True},
    {"name": "chief_complaint", "type": "string", "description": "Chief complaint", "required": True},
    {"name": "secondary_complaints", "type": "list", "description": "Conditions in the past medical history"},
    {"name": "xray", "type": "boolean", "description": "An X-ray was done, reviewed or ordered"},
    {"name": "ejection_fraction", "type": "number", "description": "Ejection fraction", "unit": "percent"},
]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=240)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--sim-concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limits-scope", choices=("process", "fleet"), default="process",
                        help="LLM_LIMITS_SCOPE: process = SIM_MAX_CONCURRENCY per worker; fleet (the product's "
                             "default since dc_extraction passes its engine) = for all workers together")
    args = parser.parse_args()
    notes = [r["note"] for r in csv.DictReader(FIXTURE.open(encoding="utf-8"))]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["record_id", "note"])
    for i in range(args.records):
        writer.writerow([f"R{i:07d}", f"{notes[i % len(notes)]}\n(copy {i})"])
    admin = database.admin_url()
    database_url = database.create_database(admin)
    processes = ProcessGroup(Path(tempfile.mkdtemp(prefix="dc-engine-bench-")))
    try:
        from app.db.migrate import upgrade

        upgrade(database_url)
        simulator = start_simulator(processes, latency=args.latency)
        stack = start_engine_stack(processes, database_url, simulator.base_url, workers=args.workers,
                                   sim_concurrency=args.sim_concurrency, limits_scope=args.limits_scope)
        workers, client, headers = stack.workers, stack.client, stack.headers
        dataset = client.post("/api/v1/dc/datasets", headers=headers, content_type="multipart/form-data",
                              data={"file": (io.BytesIO(out.getvalue().encode()), "notes.csv")}).get_json()
        wait_for(lambda: all("ready" in Path(w.log_path).read_text(errors="replace") for w in workers),  # type: ignore[attr-defined]
                 timeout=60, message="the workers to be ready")
        start = time.perf_counter()
        response = client.post(f"/api/v1/dc/datasets/{dataset['id']}/extractions", headers=headers,
                               json={"id_column": "record_id", "text_columns": ["note"], "schema": SCHEMA})
        task = response.get_json()
        status = wait_final(database_url, task["id"], timeout=3600)
        seconds = time.perf_counter() - start
        done = query(database_url, "SELECT count(*) FROM screening_results WHERE task_id = %s", task["id"])[0][0]
        in_flight = args.sim_concurrency * (args.workers if args.limits_scope == "process" else 1)
        ideal = in_flight / args.latency / 2
        measured = done / seconds
        print(json.dumps({"status": status, "limits_scope": args.limits_scope, "records": done,
                          "batches": task["total_batches"],
                          "seconds": round(seconds, 1), "records_per_second": round(measured, 2),
                          "llm_bound_records_per_second": round(ideal, 2), "ratio": round(measured / ideal, 3),
                          "simulator_calls": simulator_calls(simulator),
                          "breakdown": batch_breakdown(database_url, task["id"], args.workers,
                                                       args.latency * 2 * args.workers / in_flight)}))
    finally:
        processes.stop_all()
        database.drop_database(admin, database_url)


if __name__ == "__main__":
    main()
