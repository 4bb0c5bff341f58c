"""Helpers shared by the full-text tests (no tests here): bundled PDFs, records that match them, bad PDFs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pypdf
from flask import Flask

FULLTEXT_DIR = Path(__file__).resolve().parents[1] / "app" / "data" / "fulltext"
RCT = "synthetic_rct_heart_failure.pdf"
REVIEW = "datta_2010_jtmo.pdf"
QUALITATIVE = "tully_2010_rrp.pdf"

HEART_FAILURE_PICOS = {
    "P": "adults with chronic heart failure",
    "I": "nurse-led follow-up, telephone follow-up, structured heart failure programmes",
    "C": "usual care",
    "O": "hospital readmission, mortality, quality of life",
    "S": "randomised controlled trials",
}

# title, doi, pmid of the records the bundled PDFs are the full texts of
RECORDS = {
    RCT: ("Nurse-led telephone follow-up for adults with chronic heart failure: a randomised controlled trial",
          "10.5555/synthetic.rct.1", "90000001"),
    REVIEW: ("Complications related to deep venous thrombosis prophylaxis in trauma: a systematic review of the "
             "literature", "10.1186/1752-2897-4-1", "20205902"),
    QUALITATIVE: ("Patient Experiences of Structured Heart Failure Programmes", "10.1155/2010/157939", "21052547"),
}


def pdf_bytes(name: str) -> bytes:
    """A bundled PDF's bytes."""
    return (FULLTEXT_DIR / name).read_bytes()


def blank_pdf() -> bytes:
    """A one-page PDF without any text (what a scan without OCR looks like to a text extractor)."""
    writer = pypdf.PdfWriter()
    writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def encrypted_pdf(source: bytes) -> bytes:
    """``source`` encrypted with a user password."""
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(source)))
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zip_of(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP archive holding ``entries``."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def add_matching_records(client: Any, auth: dict[str, str], project_id: int) -> dict[str, int]:
    """Import one record per bundled PDF (through the API); {pdf name: literature id}."""
    records = [{"title": title, "doi": doi, "pmid": pmid, "year": 2010, "abstract": title}
               for title, doi, pmid in RECORDS.values()]
    response = client.post(f"/api/v1/asl/projects/{project_id}/literatures", json={"records": records},
                           headers=auth)
    assert response.status_code == 201, response.get_json()
    listed = client.get(f"/api/v1/asl/projects/{project_id}/literatures", headers=auth).get_json()
    by_title = {item["title"]: item["id"] for item in listed}
    return {name: by_title[title] for name, (title, _doi, _pmid) in RECORDS.items()}


def upload(client: Any, auth: dict[str, str], project_id: int, name: str, data: bytes,
           literature_id: int | str | None = None) -> Any:
    """POST …/fulltexts with one file (and the literature_id form field when given)."""
    form: dict[str, Any] = {"file": (io.BytesIO(data), name)}
    if literature_id is not None:
        form["literature_id"] = str(literature_id)
    return client.post(f"/api/v1/asl/projects/{project_id}/fulltexts", data=form, headers=auth,
                       content_type="multipart/form-data")


def heart_failure_project(client: Any, auth: dict[str, str]) -> int:
    """A project whose PICOS the synthetic heart-failure trial meets."""
    response = client.post("/api/v1/asl/projects", json={
        "name": "Heart failure follow-up", "picos": HEART_FAILURE_PICOS,
        "inclusion_criteria": "randomised trials of follow-up programmes in adults with heart failure",
        "exclusion_criteria": "reviews, qualitative studies"}, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def attach_all(app: Flask, client: Any, auth: dict[str, str], project_id: int) -> dict[str, int]:
    """Matching records plus their PDFs attached through the API (as a ZIP named by DOI)."""
    ids = add_matching_records(client, auth, project_id)
    archive = zip_of({RECORDS[name][1].replace("/", "_") + ".pdf": pdf_bytes(name) for name in ids})
    response = upload(client, auth, project_id, "fulltexts.zip", archive)
    assert response.status_code == 201 and response.get_json()["attached"] == len(ids), response.get_json()
    return ids
