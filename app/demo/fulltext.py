"""``litscreen demo --fulltext``: the full-text stage on the bundled open-access PDFs, through the API.

After the title/abstract run, the demo creates a second project (chronic heart failure follow-up programmes),
imports one record per bundled PDF (``app/data/fulltext/``, licences in its README), attaches the PDFs as one
ZIP named by DOI, runs full-text screening of every attached record with the simulated models, and writes the
export (CSV and XLSX, one row per study with every field's evidence, page and agreement) and the PRISMA
full-text counts under ``instance/demo/``.
"""

from __future__ import annotations

import io
import logging
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from app.demo.stack import DemoError
from app.terminal.client import LitscreenClient
from app.terminal.progress import TaskStalled, watch_task

logger = logging.getLogger(__name__)

PDF_DIR = Path(__file__).resolve().parents[1] / "data" / "fulltext"
PROJECT_NAME = "Demo: nurse-led follow-up in chronic heart failure (full text)"
PICOS = {
    "P": "adults with chronic heart failure",
    "I": "nurse-led follow-up, telephone follow-up, structured heart failure programmes",
    "C": "usual care",
    "O": "hospital readmission, mortality, quality of life",
    "S": "randomised controlled trials",
}
INCLUSION = "randomised trials of follow-up programmes in adults with heart failure"
EXCLUSION = "reviews, qualitative studies, laboratory studies"
# file -> (title, authors, year, journal, doi); the PDFs' provenance and licences: app/data/fulltext/README.md
RECORDS: dict[str, tuple[str, list[str], int, str, str]] = {
    "synthetic_rct_heart_failure.pdf": (
        "Nurse-led telephone follow-up for adults with chronic heart failure: a randomised controlled trial",
        ["Example A", "Sample B", "Placeholder C"], 2026, "Journal of Synthetic Trials (synthetic test document)",
        "10.5555/synthetic.rct.1"),
    "tully_2010_rrp.pdf": (
        "Patient Experiences of Structured Heart Failure Programmes", ["Tully NE"], 2010,
        "Rehabilitation Research and Practice", "10.1155/2010/157939"),
    "datta_2010_jtmo.pdf": (
        "Complications related to deep venous thrombosis prophylaxis in trauma: a systematic review of the "
        "literature", ["Datta I", "Ball CG", "Rudmik L", "Hameed SM", "Kortbeek JB"], 2010,
        "Journal of Trauma Management & Outcomes", "10.1186/1752-2897-4-1"),
    "agyeman-duah_2014_bmc_hsr.pdf": (
        "Understanding the barriers to setting up a healthcare quality improvement process in resource-limited "
        "settings: a situational analysis at the Medical Department of Kamuzu Central Hospital in Lilongwe, Malawi",
        ["Agyeman-Duah JNA"], 2014, "BMC Health Services Research", "10.1186/1472-6963-14-1"),
}


def bundled_zip() -> bytes:
    """The bundled PDFs in one ZIP, each named by its record's DOI (``/`` written as ``_``)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, record in RECORDS.items():
            archive.writestr(record[4].replace("/", "_") + ".pdf", (PDF_DIR / name).read_bytes())
    return out.getvalue()


def prisma_counts(database_url: str, project_id: int) -> dict[str, Any]:
    """The PRISMA full-text counts, from the service the PRISMA endpoint uses (in this process)."""
    from app import create_app
    from app.extensions import db
    from app.services.fulltext.prisma import fulltext_prisma_counts

    app = create_app({"DATABASE_URL": database_url})
    try:
        with app.app_context():
            return fulltext_prisma_counts(db.session(), project_id)
    finally:
        app.extensions["litscreen_db_engine"].dispose()


def results_table(results: list[dict[str, Any]]) -> Table:
    """One line per study: decision, exclusion reason, fields reported / verified / agreed, fields to review."""
    table = Table(title="Full-text screening (simulated models)", show_lines=False)
    table.add_column("record", no_wrap=True, max_width=28, overflow="ellipsis")
    for column in ("decision", "exclusion reason", "fields reported", "verified", "agreed", "to review"):
        table.add_column(column)
    for result in results:
        fields = result.get("fields") or {}
        reported = [f for f in fields.values() if f.get("value") is not None]
        table.add_row(str(result.get("title") or result["literature_id"])[:48], str(result.get("final_decision")),
                      str(result.get("exclusion_reason") or "–"), f"{len(reported)}/{len(fields)}",
                      str(sum(1 for f in reported if f.get("verified"))),
                      str(sum(1 for f in fields.values() if f.get("agreed"))),
                      ", ".join(n for n, f in fields.items() if f.get("review_required")) or "–")
    return table


def run_fulltext_stage(client: LitscreenClient, console: Console, step: Callable[[str], None], out_dir: Path,
                       database_url: str, stall_timeout: float = 180.0) -> dict[str, Any]:
    """Run the full-text stage (see module docstring); its summary."""
    project = client.create_project(PROJECT_NAME, PICOS, INCLUSION, EXCLUSION)
    project_id = int(project["id"])
    imported = client.import_records(project_id, [
        {"title": title, "authors": authors, "year": year, "journal": journal, "doi": doi, "abstract": title}
        for title, authors, year, journal, doi in RECORDS.values()])
    archive = bundled_zip()
    attached = client.attach_fulltexts(project_id, "bundled-fulltexts.zip", archive)
    step(f"project {project_id}: {imported['imported']} records; {len(RECORDS)} open-access PDFs "
         f"({len(archive) / 1e6:.1f} MB ZIP named by DOI) sent to POST /fulltexts: {attached['attached']} attached, "
         f"{len(attached['unmatched'])} unmatched, {len(attached['failed'])} failed")
    started = time.monotonic()
    task = client.start_screening(project_id, task_type="fulltext", literature_ids=attached["literature_ids"])
    try:
        final = watch_task(client, int(task["id"]), console, interval=0.25, stall_timeout=stall_timeout,
                           label="full text")
    except TaskStalled as exc:
        raise DemoError(f"{exc} (full-text stage)") from None
    seconds = time.monotonic() - started
    step(f"full-text task {task['id']} {final['status']} in {seconds:.1f} s")
    results = list(client.results(int(task["id"])))
    csv_path, xlsx_path = out_dir / "fulltext_results.csv", out_dir / "fulltext_results.xlsx"
    csv_path.write_bytes(client.export(int(task["id"]), "csv"))
    xlsx_path.write_bytes(client.export(int(task["id"]), "xlsx"))
    prisma = prisma_counts(database_url, project_id)
    console.print(results_table(results))
    console.print(f"PRISMA full text: {prisma['reports_sought']} reports sought, {prisma['reports_not_retrieved']} "
                  f"not retrieved, {prisma['reports_assessed']} assessed, {prisma['reports_excluded']} excluded "
                  f"({', '.join(f'{k}: {v}' for k, v in prisma['excluded_by_reason'].items()) or 'none'}), "
                  f"{prisma['studies_included']} included, {prisma['awaiting_review']} awaiting review")
    return {"project_id": project_id, "task_id": int(task["id"]), "task_status": final.get("status"),
            "attached": attached["attached"], "seconds": round(seconds, 2),
            "prompt_tokens": int(final.get("prompt_tokens") or 0), "prisma": prisma,
            "decisions": {str(r["literature_id"]): [r.get("final_decision"), r.get("exclusion_reason")]
                          for r in results},
            "files": {"csv": str(csv_path), "xlsx": str(xlsx_path)}}
