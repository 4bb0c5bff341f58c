"""Full-text extractor without the engine: seconds per document of ``FulltextExtractor.screen`` against the simulator.

No database, no Celery: one extractor (two simulated models, ``SIM_MAX_CONCURRENCY`` in this process) screens
``--documents`` copies of one PDF's text, ``--parallel`` documents at a time, and the LLM-bound time is
``documents × 2 calls × latency / SIM_MAX_CONCURRENCY``. Then single raw calls with the document's prompt and a
tiny one. Separates what the engine adds (``bench_fulltext_engine.py``) from the extractor and the simulator.

    .venv/bin/python bench/bench_fulltext_extractor.py [--pdf app/data/fulltext/agyeman-duah_2014_bmc_hsr.pdf]
        [--documents 40] [--parallel 2] [--latency 0.5] [--sim-concurrency 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.llm.fulltext_prompts import build_messages  # noqa: E402
from app.services.fulltext.extractor import Document, build_extractor  # noqa: E402
from app.services.fulltext.pdf_text import PdfLimits, extract_pdf_text  # noqa: E402
from app.services.fulltext.sections import render_pages  # noqa: E402
from app.services.record_screening import Criteria  # noqa: E402
from tests.support.processes import ProcessGroup  # noqa: E402
from tests.support.simulator import start_simulator  # noqa: E402

ARTICLE = "agyeman-duah_2014_bmc_hsr.pdf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", type=Path, default=ROOT / "app" / "data" / "fulltext" / ARTICLE)
    parser.add_argument("--documents", type=int, default=40)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--sim-concurrency", type=int, default=4)
    args = parser.parse_args()
    pages = extract_pdf_text(args.pdf.read_bytes(), PdfLimits()).page_texts
    processes = ProcessGroup(Path(tempfile.mkdtemp(prefix="fulltext-extractor-bench-")))
    try:
        simulator = start_simulator(processes, latency=args.latency)
        config = {"SIM_BASE_URL": simulator.base_url, "SIM_MAX_CONCURRENCY": str(args.sim_concurrency),
                  "LLM_LIMITS_SCOPE": "process", "LLM_CACHE": "off"}
        snapshot = {"models": [{"provider": "sim", "model": "model-a"}, {"provider": "sim", "model": "model-b"}]}
        extractor = build_extractor(snapshot, config, None)
        criteria = Criteria({"P": "adults with chronic heart failure", "S": "randomised controlled trials"},
                            "randomised trials", "reviews")

        def screen(index: int) -> float:
            started = time.perf_counter()
            extractor.screen(criteria, Document(index, f"document {index}", pages))
            return time.perf_counter() - started

        screen(0)  # warm-up: HTTP connections
        with ThreadPoolExecutor(args.parallel) as pool:
            started = time.perf_counter()
            times = list(pool.map(screen, range(args.documents)))
            wall = time.perf_counter() - started
        extractor.close()
        ideal = args.documents * 2 * args.latency / args.sim_concurrency
        print(f"{args.pdf.name} ({sum(len(p) for p in pages)} characters): {args.documents} documents, "
              f"{args.parallel} at a time: {wall:.2f} s (LLM-bound {ideal:.1f} s, ratio {ideal / wall:.2f}); "
              f"per document mean {statistics.mean(times) * 1000:.0f} ms, median "
              f"{statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
        messages = build_messages(criteria.picos, criteria.inclusion_criteria, criteria.exclusion_criteria,
                                  "document", render_pages(pages), 1, 1, None)
        with httpx.Client(timeout=60) as client:
            for label, prompt in (("the document's prompt", messages), ("a tiny prompt",
                                                                          [{"role": "user", "content": "hi"}])):
                samples = []
                for _ in range(5):
                    started = time.perf_counter()
                    client.post(f"{simulator.base_url}/chat/completions",
                                json={"model": "model-a", "messages": prompt}).raise_for_status()
                    samples.append(time.perf_counter() - started)
                print(f"one raw call with {label}: median {statistics.median(samples) * 1000:.0f} ms")
    finally:
        processes.stop_all()


if __name__ == "__main__":
    main()
