"""Dataset health-check benchmark: read + health-check a large XLSX (and CSV) file, seconds and peak memory.

Builds a workbook of clinical-note rows (the ACI-Bench fixture's notes, cycled, each row with an id, the note,
an age, a date and a short code) until the file reaches ``--mb`` megabytes, then measures in a fresh
interpreter the upload path without the database: ``read_table`` (zip guards, the formula/extent scan with
ElementTree, calamine) + ``build_table`` + ``health_report``. Peak RSS is ``ru_maxrss`` of that interpreter.

With ``--upload`` it also POSTs the file to ``/api/v1/dc/datasets`` (Flask test client, in a fresh interpreter,
on a database created from TEST_DATABASE_URL / 127.0.0.1:5432 / embedded as in the tests, dropped afterwards):
the whole upload path, rows stored as JSONB included.

    .venv/bin/python bench/bench_dc_health.py [--mb 50] [--keep PATH] [--upload]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "clinical" / "aci_bench_30.csv"


def build_xlsx(path: Path, megabytes: float) -> int:
    """Write rows until the file is about ``megabytes`` large; returns the row count."""
    from openpyxl import Workbook

    notes = [r["note"] for r in csv.DictReader(FIXTURE.open(encoding="utf-8"))]
    per_row = sum(len(n) for n in notes) / len(notes) * 0.45  # deflate ratio of note text, measured roughly
    rows = int(megabytes * 1024 * 1024 / per_row)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("notes")
    sheet.append(["record_id", "note", "age", "visit_date", "code"])
    for i in range(rows):
        sheet.append([f"R{i:07d}", f"{notes[i % len(notes)]}\n(copy {i})", 20 + i % 70,
                      f"2021-{1 + i % 12:02d}-{1 + i % 28:02d}", f"C{i % 97}"])
    workbook.save(path)
    return rows


def measure(path: str) -> None:
    """Internal: one measurement in this interpreter; prints JSON."""
    sys.path.insert(0, str(ROOT))
    from app.services.dc.health import build_table, health_report
    from app.services.dc.reading import ReadingLimits, read_table

    data = Path(path).read_bytes()
    start = time.perf_counter()
    raw = read_table(data, Path(path).name, None, ReadingLimits(max_rows=10_000_000))
    read_s = time.perf_counter() - start
    table = build_table(raw)
    report = health_report(raw, table, "bench")
    total = time.perf_counter() - start
    print(json.dumps({"bytes": len(data), "rows": report["rows"], "read_seconds": round(read_s, 2),
                      "total_seconds": round(total, 2), "issues": [i["code"] for i in report["issues"]],
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def upload(path: str, database_url: str) -> None:
    """Internal: POST the file through the API in this interpreter; prints JSON."""
    import io

    sys.path.insert(0, str(ROOT))
    from app import create_app
    from app.extensions import db
    from app.services.users import create_token, create_user

    app = create_app({"DATABASE_URL": database_url})
    with app.app_context():
        create_user(db.session(), "bench")
        token = create_token(db.session(), "bench")
    data = Path(path).read_bytes()
    client = app.test_client()
    start = time.perf_counter()
    response = client.post("/api/v1/dc/datasets", headers={"Authorization": f"Bearer {token}"},
                           content_type="multipart/form-data", data={"file": (io.BytesIO(data), "notes.xlsx")})
    seconds = time.perf_counter() - start
    body = response.get_json()
    print(json.dumps({"status": response.status_code, "rows": body.get("rows"), "upload_seconds": round(seconds, 2),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0)
    parser.add_argument("--keep", help="write the workbook here and keep it")
    parser.add_argument("--upload", action="store_true", help="also measure the upload through the API")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="dc-bench-")
    path = Path(args.keep) if args.keep else Path(directory) / "notes.xlsx"
    start = time.perf_counter()
    rows = build_xlsx(path, args.mb)
    print(f"built {path} ({path.stat().st_size / 1e6:.1f} MB, {rows} rows) in {time.perf_counter() - start:.1f} s",
          flush=True)
    result = subprocess.run([sys.executable, __file__, "measure", str(path)], capture_output=True, text=True,
                            check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(result.stdout.strip())
    if args.upload:
        sys.path.insert(0, str(ROOT))
        from app.db.migrate import upgrade
        from tests.support import database

        admin = database.admin_url()
        database_url = database.create_database(admin)
        try:
            upgrade(database_url)
            result = subprocess.run([sys.executable, __file__, "upload", str(path), database_url],
                                    capture_output=True, text=True, check=True,
                                    env={**os.environ, "PYTHONPATH": str(ROOT)})
            print(result.stdout.strip().splitlines()[-1])
        finally:
            database.drop_database(admin, database_url)
    if not args.keep:
        path.unlink()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "measure":
        measure(sys.argv[2])
    elif len(sys.argv) > 3 and sys.argv[1] == "upload":
        upload(sys.argv[2], sys.argv[3])
    else:
        main()
