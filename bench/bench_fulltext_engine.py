"""Full-text engine benchmark: documents per second of a ``fulltext`` run against its LLM-bound ideal, and worker RSS.

Records get full texts through the service's attach path (``POST …/fulltexts``, ZIPs of PDFs named by literature
id, so pypdf and the ``asl:pdf:`` cache are the real ones): the bundled open-access articles of
``app/data/fulltext`` (the three real ones, 4–10 pages, 25–42 k characters; ``--pdf-dir`` for others) cycled to
``--records``. A ``fulltext`` run of them with ``literature_ids``; the simulator answers every call after
``--latency`` seconds; LLM cache off; 2 real ``celery worker`` processes (``--concurrency 1``).

The ideal: each worker lets ``SIM_MAX_CONCURRENCY`` calls be in flight (the kind screens
``SIM_MAX_CONCURRENCY / models`` documents at once, each model's call in parallel), so the provider allows
``workers × SIM_MAX_CONCURRENCY / latency`` calls/s; a document costs ``models × parts`` calls (parts > 1 when
a document is longer than the context, ``--context-tokens``), counted at the simulator. Measured from the start
request to the task's final status (worker start-up excluded: the workers are up first).

Memory: the RSS of each worker's process tree (celery main process plus its prefork child), sampled every 0.25 s:
when ready, after the first batch (``--batch-size`` documents), at the end, and its peak.

    .venv/bin/python bench/bench_fulltext_engine.py [--records 400] [--latency 0.5] [--sim-concurrency 4]
        [--context-tokens N] [--batch-size 50] [--pdf-dir DIR]
"""  # noqa: E501

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_report import batch_breakdown, start_engine_stack  # noqa: E402
from tests.support import database  # noqa: E402
from tests.support.engine import query, simulator_calls, wait_final  # noqa: E402
from tests.support.processes import ProcessGroup, wait_for  # noqa: E402
from tests.support.simulator import start_simulator  # noqa: E402

BUNDLED = ROOT / "app" / "data" / "fulltext"
REAL_ARTICLES = ("agyeman-duah_2014_bmc_hsr.pdf", "datta_2010_jtmo.pdf", "tully_2010_rrp.pdf")
PICOS = {"P": "adults with chronic heart failure",
         "I": "nurse-led follow-up, telephone follow-up, structured heart failure programmes",
         "C": "usual care", "O": "hospital readmission, mortality, quality of life",
         "S": "randomised controlled trials"}
ZIP_ENTRIES = 100          # PDFs per upload (the limit is FULLTEXT_MAX_ZIP_ENTRIES, 500)


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live descendants so far."""
    try:
        root = psutil.Process(pid)
        return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0.0


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (0 once it is gone)."""
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0


class RssSampler(threading.Thread):
    """Samples every worker tree's RSS (wall time, [bytes per worker]) until stopped."""

    def __init__(self, pids: list[int], interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.interval = interval
        self.samples: list[tuple[float, list[int]]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append((time.time(), [tree_rss(p) for p in self.pids]))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def at(self, when: float) -> list[int]:
        """The last sample taken at or before ``when`` (the first one if none)."""
        before = [s for t, s in self.samples if t <= when]
        return before[-1] if before else self.samples[0][1]


def mb(value: int) -> float:
    return round(value / 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--sim-concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--limits-scope", choices=("process", "fleet"), default="process",
                        help="LLM_LIMITS_SCOPE: process = SIM_MAX_CONCURRENCY per worker (as the dc bench); fleet "
                             "(the product's default) = SIM_MAX_CONCURRENCY for all workers together, in PostgreSQL")
    parser.add_argument("--context-tokens", type=int, default=None,
                        help="FULLTEXT_CONTEXT_TOKENS (default: the product's 64,000; lower it to force parts)")
    parser.add_argument("--pdf-dir", type=Path, default=None,
                        help="cycle every PDF of this folder instead of the three bundled real articles")
    args = parser.parse_args()
    paths = sorted(args.pdf_dir.glob("*.pdf")) if args.pdf_dir else [BUNDLED / n for n in REAL_ARTICLES]
    pdfs = [(p.name, p.read_bytes()) for p in paths]
    load_before = os.getloadavg()
    admin = database.admin_url()
    database_url = database.create_database(admin)
    processes = ProcessGroup(Path(tempfile.mkdtemp(prefix="fulltext-engine-bench-")))
    sampler: RssSampler | None = None
    try:
        from app.db.migrate import upgrade

        upgrade(database_url)
        simulator = start_simulator(processes, latency=args.latency)
        extra = {"FULLTEXT_CONTEXT_TOKENS": str(args.context_tokens)} if args.context_tokens else {}
        stack = start_engine_stack(processes, database_url, simulator.base_url, workers=args.workers,
                                   sim_concurrency=args.sim_concurrency, limits_scope=args.limits_scope, **extra)
        workers, client, headers = stack.workers, stack.client, stack.headers
        project = client.post("/api/v1/asl/projects", headers=headers, json={
            "name": "Full-text engine bench", "picos": PICOS,
            "inclusion_criteria": "randomised trials of follow-up programmes in adults with heart failure",
            "exclusion_criteria": "reviews, qualitative studies"}).get_json()
        records = [{"title": f"Full-text bench record {i}", "abstract": "Heart failure follow-up (bench).",
                    "year": 2010, "doi": f"10.5555/bench.{i}"} for i in range(args.records)]
        response = client.post(f"/api/v1/asl/projects/{project['id']}/literatures", headers=headers,
                               json={"records": records})
        assert response.status_code == 201, response.get_json()
        ids = [r[0] for r in query(database_url, "SELECT id FROM literature WHERE project_id = %s ORDER BY id",
                                   project["id"])]
        attach_start = time.perf_counter()
        attached: list[int] = []
        for offset in range(0, len(ids), ZIP_ENTRIES):
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
                for i, literature_id in enumerate(ids[offset:offset + ZIP_ENTRIES], start=offset):
                    archive.writestr(f"{literature_id}.pdf", pdfs[i % len(pdfs)][1])
            answer = client.post(f"/api/v1/asl/projects/{project['id']}/fulltexts", headers=headers,
                                 content_type="multipart/form-data",
                                 data={"file": (io.BytesIO(out.getvalue()), "fulltexts.zip")}).get_json()
            assert not answer["failed"] and not answer["unmatched"], answer
            attached += answer["literature_ids"]
        attach_seconds = time.perf_counter() - attach_start
        pages, chars = query(database_url, "SELECT sum(pages), sum(chars) FROM fulltexts")[0]
        wait_for(lambda: all("ready" in Path(w.log_path).read_text(errors="replace") for w in workers),  # type: ignore[attr-defined]
                 timeout=60, message="the workers to be ready")
        sampler = RssSampler([w.pid for w in workers])
        sampler.start()
        time.sleep(1.0)
        ready_rss = sampler.samples[-1][1]
        simulator.reset()
        cpu_pids = [w.pid for w in workers] + [simulator.process.pid]
        cpu_before = [tree_cpu(p) for p in cpu_pids]
        start = time.perf_counter()
        response = client.post(f"/api/v1/asl/projects/{project['id']}/screening", headers=headers,
                               json={"task_type": "fulltext", "literature_ids": sorted(attached),
                                     "batch_size": args.batch_size})
        assert response.status_code == 202, response.get_json()
        task = response.get_json()
        status = wait_final(database_url, task["id"], timeout=3600)
        seconds = time.perf_counter() - start
        end_wall = time.time()
        cpu = [round(tree_cpu(p) - b, 1) for p, b in zip(cpu_pids, cpu_before, strict=True)]
        time.sleep(0.5)
        sampler.stop()
        calls = simulator_calls(simulator)
        done = query(database_url, "SELECT count(*) FROM screening_results WHERE task_id = %s AND status = 'success'",
                     task["id"])[0][0]
        parts = query(database_url, "SELECT coalesce(sum((d->>'parts')::int), 0) FROM screening_results r, "
                                    "jsonb_array_elements(r.decisions) d WHERE r.task_id = %s", task["id"])[0][0]
        item_ms = query(database_url, "SELECT avg(duration_ms), percentile_cont(0.5) WITHIN GROUP (ORDER BY "
                                      "duration_ms), max(duration_ms) FROM screening_results WHERE task_id = %s",
                        task["id"])[0]
        first_batch_end = query(database_url, "SELECT extract(epoch FROM min(completed_at)) FROM screening_batches "
                                              "WHERE task_id = %s", task["id"])[0][0]
        calls_per_document = calls / done if done else float("nan")
        in_flight = args.sim_concurrency * (args.workers if args.limits_scope == "process" else 1)
        provider_calls_per_second = in_flight / args.latency
        ideal = provider_calls_per_second / calls_per_document
        measured = done / seconds
        after_first = sampler.at(float(first_batch_end))
        at_end = sampler.at(end_wall)
        peak = [max(s[i] for _t, s in sampler.samples) for i in range(args.workers)]
        per_worker_item_seconds = args.latency * calls_per_document / (in_flight / args.workers)
        breakdown = batch_breakdown(database_url, task["id"], args.workers, per_worker_item_seconds)
        report: dict[str, Any] = {
            "status": status, "limits_scope": args.limits_scope,
            "documents": done, "batches": task["total_batches"], "pdfs": [n for n, _ in pdfs],
            "pages": int(pages), "chars": int(chars), "attach_seconds": round(attach_seconds, 1),
            "seconds": round(seconds, 1), "documents_per_second": round(measured, 2),
            "simulator_calls": calls, "model_parts": int(parts), "calls_per_document": round(calls_per_document, 3),
            "llm_bound_documents_per_second": round(ideal, 2), "ratio": round(measured / ideal, 3),
            "rss_mb_ready": [mb(v) for v in ready_rss], "rss_mb_after_first_batch": [mb(v) for v in after_first],
            "rss_mb_end": [mb(v) for v in at_end], "rss_mb_peak": [mb(v) for v in peak],
            "cpu_seconds_workers_then_simulator": cpu,
            "item_ms_mean_median_max": [round(float(v or 0)) for v in item_ms],
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()], "breakdown": breakdown,
        }
        print(json.dumps(report))
        print()
        print("| documents | calls/doc | seconds | docs/s | ideal docs/s | ratio | worker RSS MB: ready → after "
              "1st batch → end (peak) |")
        print("|---|---|---|---|---|---|---|")
        rss = "; ".join(f"{mb(ready_rss[i])} → {mb(after_first[i])} → {mb(at_end[i])} ({mb(peak[i])})"
                        for i in range(args.workers))
        print(f"| {done} | {calls_per_document:.2f} | {seconds:.1f} | {measured:.2f} | {ideal:.2f} | "
              f"{measured / ideal:.3f} | {rss} |")
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        processes.stop_all()
        database.drop_database(admin, database_url)


if __name__ == "__main__":
    main()
