"""Exports users can join back: for every format litscreen reads, import a real export, screen it (result rows
written with the engine's own checkpoint statement), export RIS / CSV / XLSX, and re-import the RIS (and CSV)
export into a fresh project: the same records, keys, record types, source databases, accession numbers and
human labels come back, and re-importing into the original project finds every record a duplicate."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import rispy
from openpyxl import load_workbook

from tests.conftest import PICOS
from tests.support.screening import models_configured, seed_results, start

FIXTURES = Path(__file__).parent / "fixtures"
BIBTEX = (
    "@inproceedings{conf1, author = {Li, Y. and Li, Y.}, title = {Defaults at 50% uptake}, booktitle = {Conf},\n"
    "  year = {2019}, doi = {10.1000/conf.1}, pmid = {31234567}, abstract = {About 45% of doctors.}}\n"
    "@incollection{chap1, author = {Doe, Jane}, title = {A chapter on nudges}, booktitle = {Handbook},\n"
    "  year = {2018}}\n"
    "@article{art1, author = {Roe, R.}, title = {Reminders for nurses}, journal = {BMJ}, year = {2020},\n"
    "  doi = {10.1000/art.1}}\n"
    "@phdthesis{thesis1, author = {Poe, P.}, title = {Choice architecture in hospitals}, school = {U},\n"
    "  year = {2017}}\n"
    "@techreport{report1, author = {Moe, M.}, title = {Audit and feedback report}, year = {2016}}\n"
)
COMPARED = ("title", "abstract", "authors", "year", "journal", "doi", "pmid", "record_type", "source_databases",
            "source_id", "label")
# one real export per format litscreen reads (and the BibTeX above)
FORMATS = [
    ("scopus_export.ris", None),
    ("pubmed_medline_balloon-guide-catheter.nbib", None),
    ("refs.bib", BIBTEX.encode()),
    ("ebscohost_academic_search_export.csv", None),
    ("web_of_science_plaintext.txt", None),
    ("web_of_science_tab_delimited_utf16.txt", None),
    ("endnote_export.xml", None),
    ("ebscohost_academic_search_export.ris", None),
]


def new_project(client, auth, name: str) -> int:
    response = client.post("/api/v1/asl/projects", json={"name": name, "picos": PICOS}, headers=auth)
    assert response.status_code == 201
    return response.get_json()["id"]


def upload(client, auth, project_id: int, name: str, data: bytes, source: str | None = None) -> dict:
    form = {"file": (io.BytesIO(data), name)}
    if source:
        form["source"] = source
    response = client.post(f"/api/v1/asl/projects/{project_id}/literatures", headers=auth, data=form,
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def records_of(client, auth, project_id: int) -> dict[str, dict]:
    items = client.get(f"/api/v1/asl/projects/{project_id}/literatures", headers=auth,
                       query_string={"page_size": 500}).get_json()
    return {item["title"]: {name: item[name] for name in COMPARED} for item in items}


def label_some(database_url: str, project_id: int) -> None:
    import psycopg

    from tests.support import database

    with psycopg.connect(database.conninfo(database_url)) as conn:
        conn.execute("UPDATE literature SET label = CASE WHEN id %% 3 = 0 THEN 'include' WHEN id %% 3 = 1 "
                     "THEN 'exclude' END WHERE project_id = %s", (project_id,))


def assert_same(got: dict[str, dict], expected: dict[str, dict]) -> None:
    assert set(got) == set(expected)
    differences = {title: {name: (value, got[title][name]) for name, value in fields.items()
                           if got[title][name] != value} for title, fields in expected.items()}
    assert {title: diff for title, diff in differences.items() if diff} == {}


def export(client, auth, task_id: int, fmt: str) -> bytes:
    response = client.get(f"/api/v1/asl/tasks/{task_id}/export", headers=auth, query_string={"format": fmt})
    assert response.status_code == 200
    return response.get_data()


@pytest.mark.parametrize(("name", "data"), FORMATS, ids=[f[0] for f in FORMATS])
def test_ris_and_csv_exports_round_trip(app, client, auth, monkeypatch, database_url, name, data) -> None:
    models_configured(app, monkeypatch)
    original = new_project(client, auth, "original")
    data = data if data is not None else (FIXTURES / name).read_bytes()
    first = upload(client, auth, original, name, data)
    label_some(database_url, original)
    before = records_of(client, auth, original)
    assert len(before) == first["imported"] and first["imported"] > 0
    task = start(client, auth, original, batch_size=1000).get_json()
    seed_results(app, task["id"])

    ris = export(client, auth, task["id"], "ris")
    entries = rispy.loads(ris.decode())
    assert len(entries) == len(before)
    assert all(any(k.startswith("litscreen:") and ":label:" not in k for k in e["keywords"]) for e in entries)

    copy = new_project(client, auth, "copy from RIS")
    again = upload(client, auth, copy, "export.ris", ris)
    assert (again["imported"], again["duplicates"], again["format"]) == (len(before), 0, "ris")
    assert_same(records_of(client, auth, copy), before)

    assert upload(client, auth, original, "export.ris", ris)["duplicates"] == len(before)

    table = export(client, auth, task["id"], "csv")
    rows = list(csv.DictReader(io.StringIO(table.decode())))
    assert {"abstract", "record_type", "source_database", "accession_number", "human_label"} <= set(rows[0])
    from_csv = new_project(client, auth, "copy from CSV")
    assert upload(client, auth, from_csv, "export.csv", table)["imported"] == len(before)
    assert_same(records_of(client, auth, from_csv), before)


def test_ris_export_writes_the_record_type_pmid_source_and_label(app, client, auth, monkeypatch,
                                                                 database_url) -> None:
    models_configured(app, monkeypatch)
    project = new_project(client, auth, "types")
    upload(client, auth, project, "refs.bib", BIBTEX.encode(), source="Scopus")
    label_some(database_url, project)
    task = start(client, auth, project, batch_size=1000).get_json()
    seed_results(app, task["id"])
    entries = {e["title"]: e for e in rispy.loads(export(client, auth, task["id"], "ris").decode())}
    conference = entries["Defaults at 50% uptake"]
    assert conference["type_of_reference"] == "CPAPER" and entries["A chapter on nudges"]["type_of_reference"] == \
        "CHAP" and entries["Reminders for nurses"]["type_of_reference"] == "JOUR"
    assert conference["urls"] == ["https://pubmed.ncbi.nlm.nih.gov/31234567/"]
    assert conference["name_of_database"] == "Scopus" and conference["accession_number"] == "conf1"
    assert conference["authors"] == ["Li, Y.", "Li, Y."] and conference["abstract"] == "About 45% of doctors."
    labels = {e["title"]: [k for k in e["keywords"] if k.startswith("litscreen:label:")] for e in entries.values()}
    stored = {title: fields["label"] for title, fields in records_of(client, auth, project).items()}
    assert labels == {title: [f"litscreen:label:{label}"] if label else [] for title, label in stored.items()}
    assert any(stored.values())
    assert entries["Choice architecture in hospitals"]["type_of_reference"] == "THES"
    assert entries["Audit and feedback report"]["type_of_reference"] == "RPRT"


def test_xlsx_export_has_the_csv_columns(app, client, auth, monkeypatch, database_url) -> None:
    models_configured(app, monkeypatch)
    project = new_project(client, auth, "xlsx")
    name = "cochrane_central_via_endnote.ris"
    upload(client, auth, project, name, (FIXTURES / name).read_bytes())
    post = client.post(f"/api/v1/asl/projects/{project}/literatures", headers=auth,
                       json={"records": [{"title": f"Padding record {i}"} for i in range(3)]})
    assert post.status_code == 201
    task = start(client, auth, project, batch_size=1000).get_json()
    seed_results(app, task["id"])
    response = client.get(f"/api/v1/asl/tasks/{task['id']}/export", headers=auth, query_string={"format": "xlsx"})
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(response.get_data()), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    csv_rows = list(csv.reader(io.StringIO(export(client, auth, task["id"], "csv").decode())))
    assert list(rows[0]) == csv_rows[0] and len(rows) == len(csv_rows) == 7
    header = list(rows[0])
    by_accession = {row[header.index("accession_number")]: row for row in rows[1:]}
    row = by_accession["CN-00778158"]
    assert row[header.index("pmid")] == "21314913" and row[header.index("source_database")] == "CENTRAL"
    assert row[header.index("abstract")].startswith("BACKGROUND: School interventions")
