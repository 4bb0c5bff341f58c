"""PDF text extraction benchmark: pages/s and MB/s of ``extract_pdf_text`` (pypdf) on real article PDFs.

Each file is extracted ``--rounds`` times in this process (no cache); the figure is total pages (and megabytes
of PDF) over total wall time, with the slowest file named. Default files: the bundled open-access PDFs under
``app/data/fulltext/``; pass other PDFs (or a folder) as arguments.

    .venv/bin/python bench/bench_pdf_text.py [--rounds 5] [PDF or folder ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.services.fulltext.pdf_text import EXTRACTOR, extract_pdf_text  # noqa: E402


def pdf_files(paths: list[str]) -> list[Path]:
    """The PDFs named, or found in the folders named (default: the bundled ones)."""
    found: list[Path] = []
    for raw in paths or [str(ROOT / "app" / "data" / "fulltext")]:
        path = Path(raw)
        found += sorted(path.glob("*.pdf")) if path.is_dir() else [path]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    files = pdf_files(args.paths)
    pages = chars = 0
    size = 0
    elapsed = 0.0
    per_file = []
    for path in files:
        data = path.read_bytes()
        start = time.perf_counter()
        for _ in range(args.rounds):
            text = extract_pdf_text(data)
        seconds = (time.perf_counter() - start) / args.rounds
        per_file.append((path.name, text.pages, len(data), seconds))
        pages += text.pages * args.rounds
        chars += text.chars * args.rounds
        size += len(data) * args.rounds
        elapsed += seconds * args.rounds
    print(f"{EXTRACTOR}, {len(files)} files x {args.rounds} rounds")
    for name, file_pages, file_size, seconds in per_file:
        print(f"  {name:40s} {file_pages:3d} pages {file_size / 1e6:6.2f} MB  {seconds * 1000:7.1f} ms "
              f"({file_pages / seconds:6.1f} pages/s)")
    print(f"total: {pages / elapsed:.1f} pages/s, {size / 1e6 / elapsed:.2f} MB/s, "
          f"{chars / elapsed / 1e6:.2f} M chars/s")


if __name__ == "__main__":
    main()
