"""LLM-bound throughput: the Screener against the simulator at 500 ms latency, at several concurrencies.

For concurrency C the ideal rate is C / 0.5 s calls per second; the target is achieved / ideal >= 0.9. A last
run caps the provider at a requests-per-minute limit below the ideal rate, to show the limiter holds: the
achieved rate and the busiest 1-second and 10-second windows seen by the simulator never exceed the limit.

    .venv/bin/python bench/bench_llm_throughput.py [--rounds 10] [--concurrency 4,16,64] [--capped-rpm 1200]

Starts its own simulator subprocess on a free loopback port, uses no database (LLM cache off), leaves nothing.
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.services.record_screening import Criteria, RecordText, build_screener, model_config_snapshot  # noqa: E402

LATENCY = 0.5
CRITERIA = Criteria({"P": "healthcare professionals", "I": "nudges", "O": "evidence-based practice"})


def start_simulator(log_path: Path) -> tuple[subprocess.Popen, str]:
    log = log_path.open("wb")
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "llm-simulator", "--port", "0",
                                "--latency", str(LATENCY)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"listening on (http://\S+/v1)", log_path.read_text(errors="replace"))
        if match:
            return process, match.group(1)
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"simulator did not start: {log_path.read_text()}")


def load_records(n: int) -> list[RecordText]:
    with (ROOT / "app" / "data" / "nagtegaal_2019_nudging.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [RecordText(i, rows[i % len(rows)]["title"] + f" [{i}]", rows[i % len(rows)]["abstract"])
            for i in range(n)]


def run(base_url: str, concurrency: int, calls: int, rpm: int) -> dict:
    httpx.delete(f"{base_url}/stats").raise_for_status()
    config = {"SCREENING_MODELS": "sim:sim-a", "SIM_BASE_URL": base_url, "LLM_CACHE": "off",
              "SIM_MAX_CONCURRENCY": concurrency, "SIM_RPM": rpm, "SIM_TIMEOUT_SECONDS": 30}
    screener = build_screener(model_config_snapshot(config), config, cache=None)  # LLM_CACHE=off
    records = load_records(calls)
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            start = time.perf_counter()
            results = list(pool.map(lambda r: screener.screen(CRITERIA, r), records))
            elapsed = time.perf_counter() - start
    finally:
        screener.close()
    stats_10s = httpx.get(f"{base_url}/stats", params={"window": 10.0}).json()
    stats_60s = httpx.get(f"{base_url}/stats", params={"window": 60.0}).json()
    ideal = concurrency / LATENCY
    return {
        "concurrency": concurrency, "rpm": rpm, "calls": stats_10s["calls_total"],
        "failed": sum(r.failed for r in results), "seconds": elapsed, "rate": calls / elapsed, "ideal": ideal,
        "max_10s": stats_10s["max_calls_in_window"], "max_60s": stats_60s["max_calls_in_window"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="calls per run = rounds x concurrency")
    parser.add_argument("--concurrency", default="4,16,64")
    parser.add_argument("--capped-rpm", type=int, default=600)
    parser.add_argument("--capped-seconds", type=int, default=75, help="length of the capped run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        process, base_url = start_simulator(Path(tmp) / "simulator.log")
        try:
            runs = [run(base_url, c, c * args.rounds, 60_000) for c in map(int, args.concurrency.split(","))]
            top = max(map(int, args.concurrency.split(",")))
            runs.append(run(base_url, top, int(args.capped_rpm / 60 * args.capped_seconds), args.capped_rpm))
        finally:
            process.terminate()
            process.wait(timeout=10)
    print(f"simulator latency {LATENCY * 1000:.0f} ms, {args.rounds} rounds per uncapped run, LLM cache off; "
          "efficiency = calls/s / min(C / 0.5 s, RPM / 60)\n")
    print("| concurrency C | RPM limit | calls | failed | seconds | calls/s | ideal C/0.5s | efficiency "
          "| busiest 60 s (calls) | busiest 10 s (calls) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        limit = r["rpm"] / 60
        print(f"| {r['concurrency']} | {r['rpm']} | {r['calls']} | {r['failed']} | {r['seconds']:.2f} | "
              f"{r['rate']:.1f} | {r['ideal']:.0f} | {r['rate'] / min(r['ideal'], limit):.2f} | "
              f"{r['max_60s']} | {r['max_10s']} |")
    capped = runs[-1]
    print(f"\ncapped run: {capped['rate']:.2f} calls/s against a limit of {capped['rpm'] / 60:.2f}/s; busiest "
          f"60 s window {capped['max_60s']} calls (RPM {capped['rpm']}), busiest 10 s {capped['max_10s']} "
          f"(a sixth of the RPM: {capped['rpm'] / 6:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
