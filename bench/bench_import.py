"""Import benchmark: 10,000-record RIS, CSV, Web of Science plain text and EndNote XML files (and, for
comparison, 10,000 JSON records; and the RIS again into the project that already holds them, every record a
duplicate) through the real API — a gunicorn web process on loopback against its own PostgreSQL database,
created and dropped here.

Reports wall-clock seconds per import and the web worker's peak RSS (the kernel's VmHWM high-water mark; a
fresh server per import so each peak is that import's own). Targets: < 10 s and < 300 MB per import.

    .venv/bin/python bench/bench_import.py [--records 10000]

The admin database comes from TEST_DATABASE_URL, else 127.0.0.1:5432, else an embedded server (as in the tests).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import database  # noqa: E402  (same provisioning as the test suite)

TARGET_SECONDS = 10.0
TARGET_MB = 300.0
WORDS = (
    "nudge default reminder feedback physician nurse pharmacist prescribing guideline adherence trial randomised "
    "controlled outcome intervention hospital primary care antibiotic vaccination choice architecture behaviour "
    "evidence practice quality improvement audit electronic health record alert cohort effect"
).split()


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def generate_records(count: int, seed: int = 7) -> list[dict]:
    """Realistic-sized records: ~12-word titles, ~230-word abstracts, 5 authors, keywords, unique DOIs."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        records.append({
            "title": f"{sentence(rng, 12)[:-1]} ({i})",
            "abstract": " ".join(sentence(rng, 23) for _ in range(10)),
            "authors": [f"{rng.choice(WORDS).capitalize()}, {chr(65 + rng.randrange(26))}." for _ in range(5)],
            "year": 1990 + rng.randrange(35),
            "journal": f"Journal of {rng.choice(WORDS).capitalize()} Studies",
            "doi": f"10.5555/bench.{i:06d}",
            "keywords": rng.sample(WORDS, 5),
        })
    return records


def to_ris(records: list[dict]) -> bytes:
    out = io.StringIO()
    for r in records:
        out.write("TY  - JOUR\r\n")
        out.write(f"TI  - {r['title']}\r\n")
        for author in r["authors"]:
            out.write(f"AU  - {author}\r\n")
        out.write(f"PY  - {r['year']}\r\nT2  - {r['journal']}\r\nDO  - {r['doi']}\r\nAB  - {r['abstract']}\r\n")
        for keyword in r["keywords"]:
            out.write(f"KW  - {keyword}\r\n")
        out.write("ER  - \r\n\r\n")
    return out.getvalue().encode("utf-8")


def to_csv(records: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Authors", "Title", "Year", "Source title", "DOI", "Abstract", "Author Keywords"])
    for r in records:
        writer.writerow([
            "; ".join(r["authors"]), r["title"], r["year"], r["journal"], r["doi"], r["abstract"],
            "; ".join(r["keywords"]),
        ])
    return out.getvalue().encode("utf-8")


def to_wos(records: list[dict]) -> bytes:
    """Web of Science plain text (savedrecs.txt)."""
    out = io.StringIO()
    out.write("\ufeffFN Clarivate Analytics Web of Science\nVR 1.0\n")
    for r in records:
        out.write("PT J\n")
        out.write("AU " + "\n   ".join(r["authors"]) + "\n")
        out.write(f"TI {r['title']}\nSO {r['journal'].upper()}\nDT Article\n")
        out.write("DE " + "; ".join(r["keywords"]) + "\n")
        out.write(f"AB {r['abstract']}\nPY {r['year']}\nDI {r['doi']}\nUT WOS:{r['doi'][-6:]:0>15}\nER\n\n")
    out.write("EF\n")
    return out.getvalue().encode("utf-8")


def to_endnote_xml(records: list[dict]) -> bytes:
    """EndNote XML (one line, values in <style> runs as EndNote writes them)."""
    from xml.sax.saxutils import escape

    def styled(text: str) -> str:
        return f'<style face="normal" font="default" size="100%">{escape(text)}</style>'

    parts = ['<?xml version="1.0" encoding="UTF-8" ?><xml><records>']
    for r in records:
        authors = "".join(f"<author>{styled(a)}</author>" for a in r["authors"])
        keywords = "".join(f"<keyword>{styled(k)}</keyword>" for k in r["keywords"])
        parts.append(
            f'<record><ref-type name="Journal Article">17</ref-type><contributors><authors>{authors}</authors>'
            f"</contributors><titles><title>{styled(r['title'])}</title></titles><periodical><full-title>"
            f"{styled(r['journal'])}</full-title></periodical><keywords>{keywords}</keywords><dates><year>"
            f"{styled(str(r['year']))}</year></dates><abstract>{styled(r['abstract'])}</abstract>"
            f"<electronic-resource-num>{styled(r['doi'])}</electronic-resource-num></record>"
        )
    parts.append("</records></xml>")
    return "".join(parts).encode("utf-8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM) in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return psutil.Process(pid).memory_info().rss / 2**20


class WebServer:
    """A gunicorn web process (1 sync worker) for one import."""

    def __init__(self, database_url: str) -> None:
        self.port = free_port()
        env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "--workers", "1", "--timeout", "120",
             "--bind", f"127.0.0.1:{self.port}", "app:create_app()"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.base_url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError("gunicorn did not answer /healthz within 60 s")

    def worker_pid(self) -> int:
        children = psutil.Process(self.process.pid).children()
        return children[0].pid if children else self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def make_token(database_url: str) -> str:
    from app import create_app
    from app.extensions import db
    from app.services.users import create_token, create_user

    app = create_app({"DATABASE_URL": database_url})
    with app.app_context():
        create_user(db.session(), "bench")
        token = create_token(db.session(), "bench")
    app.extensions["litscreen_db_engine"].dispose()
    return token


def run_import(database_url: str, headers: dict, label: str, send, project_id: int | None = None) -> dict:
    server = WebServer(database_url)
    try:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=300) as client:
            if project_id is None:
                project_id = client.post("/api/v1/asl/projects", json={"name": label, "picos": {"P": "bench"}}
                                         ).json()["id"]
            worker = server.worker_pid()
            before = psutil.Process(worker).memory_info().rss / 2**20
            started = time.perf_counter()
            response = send(client, f"/api/v1/asl/projects/{project_id}/literatures")
            seconds = time.perf_counter() - started
            peak = peak_rss_mb(worker)
        if response.status_code != 201:
            raise RuntimeError(f"{label}: HTTP {response.status_code}: {response.text[:500]}")
        body = response.json()
        return {"label": label, "seconds": seconds, "peak_mb": peak, "idle_mb": before, "imported": body["imported"],
                "duplicates": body["duplicates"], "project_id": project_id}
    finally:
        server.stop()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()

    records = generate_records(args.records)
    ris_data, csv_data = to_ris(records), to_csv(records)
    wos_data, xml_data = to_wos(records), to_endnote_xml(records)
    json_body = json.dumps({"records": records}).encode()
    admin = database.admin_url()
    database_url = database.create_database(admin)
    try:
        from app.db.migrate import upgrade

        upgrade(database_url)
        headers = {"Authorization": f"Bearer {make_token(database_url)}"}
        def send_ris(c, u):  # type: ignore[no-untyped-def]
            return c.post(u, files={"file": ("bench.ris", ris_data, "application/x-research-info-systems")})

        first_ris = run_import(database_url, headers, f"RIS file ({len(ris_data) / 2**20:.1f} MB)", send_ris)
        results = [
            first_ris,
            run_import(database_url, headers, "same RIS again (dups)", send_ris, first_ris["project_id"]),
            run_import(database_url, headers, f"WoS text ({len(wos_data) / 2**20:.1f} MB)", lambda c, u: c.post(
                u, files={"file": ("savedrecs.txt", wos_data, "text/plain")})),
            run_import(database_url, headers, f"EndNote XML ({len(xml_data) / 2**20:.1f} MB)", lambda c, u: c.post(
                u, files={"file": ("library.xml", xml_data, "application/xml")})),
            run_import(database_url, headers, f"CSV file ({len(csv_data) / 2**20:.1f} MB)", lambda c, u: c.post(
                u, files={"file": ("bench.csv", csv_data, "text/csv")})),
            run_import(database_url, headers, f"JSON body ({len(json_body) / 2**20:.1f} MB)", lambda c, u: c.post(
                u, content=json_body, headers={"Content-Type": "application/json"})),
        ]
    finally:
        database.drop_database(admin, database_url)

    print(f"Import of {args.records:,} records through the API (gunicorn, 1 sync worker; fresh process each)")
    print(f"{'input':<24} {'imported':>9} {'dups':>7} {'seconds':>8} {'peak RSS MB':>12} {'idle RSS MB':>12}  target")
    for r in results:
        ok = r["seconds"] < TARGET_SECONDS and r["peak_mb"] < TARGET_MB
        print(f"{r['label']:<24} {r['imported']:>9,} {r['duplicates']:>7,} {r['seconds']:>8.2f} {r['peak_mb']:>12.0f} "
              f"{r['idle_mb']:>12.0f}  {'met' if ok else 'MISSED'} (<{TARGET_SECONDS:.0f} s, <{TARGET_MB:.0f} MB)")


if __name__ == "__main__":
    main()
