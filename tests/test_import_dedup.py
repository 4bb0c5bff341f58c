"""Deduplication across databases through the API, on real overlapping exports: union-find over DOI / PMID /
title + year (copies with different subsets of keys are one record), conflicting human labels as a warning,
near-duplicates listed for a human with merge and dismiss, and the per-database PRISMA counts."""

from __future__ import annotations

import io
from pathlib import Path

import psycopg

from app.importers import parse_file
from app.services.deduplication import ExistingRecord, group_duplicates
from tests.support import database

FIXTURES = Path(__file__).parent / "fixtures"


def upload(client, auth, project_id: int, name: str, data: bytes | None = None, source: str | None = None):
    form = {"file": (io.BytesIO(data if data is not None else (FIXTURES / name).read_bytes()), name)}
    if source:
        form["source"] = source
    return client.post(f"/api/v1/asl/projects/{project_id}/literatures", headers=auth, data=form,
                       content_type="multipart/form-data")


def post_records(client, auth, project_id: int, records: list[dict], source: str | None = None):
    body: dict = {"records": records}
    if source:
        body["source"] = source
    return client.post(f"/api/v1/asl/projects/{project_id}/literatures", headers=auth, json=body)


def sql(database_url: str, query: str, *params):
    with psycopg.connect(database.conninfo(database_url)) as conn:
        return conn.execute(query, params).fetchall()


def record(**fields) -> dict:
    base = {"index": 0, "title": None, "doi": None, "pmid": None, "year": None, "label": None}
    return {**base, **fields}


def test_union_find_joins_copies_with_different_subsets_of_keys() -> None:
    records = [
        record(index=0, title="Alpha trial", year=2020, pmid="111"),                   # PubMed copy: PMID only
        record(index=1, title="Alpha trial (Scopus)", year=2020, doi="10.1/a", pmid="111"),  # DOI + PMID
        record(index=2, title="ALPHA TRIAL!", year=2021, doi="10.1/a"),                 # DOI only, other year
        record(index=3, title="Beta study", year=2019),
        record(index=4, title="beta study", year=2019),                                 # title + year only
        record(index=5, title="Reply to the letter", year=2018, doi="10.1/r1"),
        record(index=6, title="Reply to the letter", year=2018, doi="10.1/r2"),         # same title, other DOI
    ]
    existing = [ExistingRecord(id=7, doi=None, pmid=None, title="Beta  Study.", year=2019, label=None)]
    groups = sorted((g.new, g.existing) for g in group_duplicates(records, existing))
    assert groups == [([0, 1, 2], []), ([3, 4], [7]), ([5], []), ([6], [])]


def test_the_same_library_from_endnote_ris_xml_and_pubmed_is_one_set(client, auth, project_id,
                                                                       database_url) -> None:
    first = upload(client, auth, project_id, "endnote_export.ris").get_json()
    assert (first["imported"], first["duplicates"], first["format"]) == (102, 0, "ris")
    xml = upload(client, auth, project_id, "endnote_export.xml").get_json()
    assert (xml["imported"], xml["duplicates"], xml["format"]) == (0, 102, "endnote_xml")
    nbib = upload(client, auth, project_id, "pubmed_medline_blue-light.nbib").get_json()
    assert (nbib["imported"], nbib["duplicates"]) == (0, 80)
    assert sql(database_url, "SELECT count(*) FROM literature")[0][0] == 102


def test_copies_without_a_shared_key_are_joined_through_a_third(client, auth, project_id, database_url) -> None:
    """Real records of the blue-light library: a PMID-only copy, then the PubMed export (PMID + DOI), then a
    DOI-only copy: one record each, completed from every copy."""
    pubmed = parse_file("x.nbib", (FIXTURES / "pubmed_medline_blue-light.nbib").read_bytes()).records
    with_doi = [r for r in pubmed if r["doi"]][:5]
    pmid_only = [{"title": r["title"] + " [PMID copy]", "pmid": r["pmid"], "year": r["year"]} for r in with_doi]
    doi_only = [{"title": r["title"].upper(), "doi": r["doi"].upper(), "year": r["year"],
                 "abstract": "from the DOI copy"} for r in with_doi]
    assert post_records(client, auth, project_id, pmid_only, source="Embase").get_json()["imported"] == 5
    nbib = upload(client, auth, project_id, "pubmed_medline_blue-light.nbib").get_json()
    assert (nbib["imported"], nbib["duplicates"]) == (75, 5)
    again = post_records(client, auth, project_id, doi_only, source="Scopus").get_json()
    assert (again["imported"], again["duplicates"]) == (0, 5)
    rows = sql(database_url, "SELECT doi, pmid, source_databases FROM literature WHERE pmid = %s",
               with_doi[0]["pmid"])
    # the PMID-only row got the DOI from the PubMed copy, and lists every database it was found in
    assert rows == [(with_doi[0]["doi"], with_doi[0]["pmid"], ["Embase", "PubMed", "Scopus"])]
    assert sql(database_url, "SELECT count(*) FROM literature")[0][0] == 80


def test_web_of_science_plain_text_and_tab_delimited_are_one_set(client, auth, project_id, database_url) -> None:
    assert upload(client, auth, project_id, "web_of_science_plaintext.txt").get_json()["imported"] == 50
    answer = upload(client, auth, project_id, "web_of_science_tab_delimited_utf16.txt").get_json()
    assert (answer["imported"], answer["duplicates"], answer["encoding"]) == (0, 50, "utf-16")
    # three records have no DOI: matched on title + year
    assert sql(database_url, "SELECT count(*) FROM literature WHERE doi IS NULL")[0][0] == 3


def test_ebscohost_ris_and_csv_overlap(client, auth, project_id) -> None:
    assert upload(client, auth, project_id, "ebscohost_academic_search_export.ris").get_json()["imported"] == 9
    answer = upload(client, auth, project_id, "ebscohost_academic_search_export.csv").get_json()
    assert (answer["imported"], answer["duplicates"]) == (1, 9)


def test_conflicting_labels_in_a_duplicate_group_are_a_warning(client, auth, project_id, database_url) -> None:
    data = (b"title,abstract,label_included,doi\n"
            b"Nudges for GPs,a,1,10.1000/n\n"
            b"Nudges for GPs (dup),b,0,10.1000/n\n"
            b"Defaults in pharmacy,c,0,\n"
            b"Defaults in pharmacy,d,0,\n")
    answer = upload(client, auth, project_id, "labelled.csv", data).get_json()
    assert (answer["imported"], answer["duplicates"]) == (2, 2)
    conflicts = [w for w in answer["warnings"] if "conflicting human labels" in w]
    assert len(conflicts) == 1 and "#0, #1" in conflicts[0] and "exclude vs include" in conflicts[0]
    assert sql(database_url, "SELECT label FROM literature WHERE doi = '10.1000/n'") == [("include",)]
    later = post_records(client, auth, project_id, [{"title": "Defaults in pharmacy", "label": "include"}]).get_json()
    assert later["duplicates"] == 1 and any("existing record" in w for w in later["warnings"])


def test_source_label_and_prisma_counts_per_database(client, auth, project_id) -> None:
    assert upload(client, auth, project_id, "zotero_export_of_pubmed.ris", source="PubMed").get_json()[
        "source_databases"] == {"PubMed": 6}
    scopus = upload(client, auth, project_id, "scopus_export.ris").get_json()
    assert scopus["source_databases"] == {"Scopus": 6}
    upload(client, auth, project_id, "endnote_export.ris")
    upload(client, auth, project_id, "pubmed_medline_blue-light.nbib")  # 80 more PubMed records, all duplicates
    counts = client.get(f"/api/v1/asl/projects/{project_id}/imports", headers=auth).get_json()
    by_name = {d["name"]: d for d in counts["databases"]}
    assert by_name["PubMed"] == {"name": "PubMed", "records_identified": 6 + 102 + 80, "duplicates_removed": 80,
                                 "records_imported": 108}
    assert by_name["Scopus"]["records_identified"] == 6
    assert counts["records_identified"] == 6 + 6 + 102 + 80
    assert counts["duplicates_removed"] == 80 + scopus["duplicates"]
    assert counts["records_after_duplicates_removed"] == 6 + 6 + 102 - scopus["duplicates"]
    assert [i["filename"] for i in counts["imports"]] == ["zotero_export_of_pubmed.ris", "scopus_export.ris",
                                                         "endnote_export.ris", "pubmed_medline_blue-light.nbib"]
    assert counts["imports"][0]["source_label"] == "PubMed"


def test_near_duplicates_are_listed_merged_and_dismissed(client, auth, project_id, database_url) -> None:
    pubmed = parse_file("x.nbib", (FIXTURES / "pubmed_medline_blue-light.nbib").read_bytes()).records
    upload(client, auth, project_id, "pubmed_medline_blue-light.nbib")
    a, b = pubmed[0], pubmed[1]
    copies = [
        # online-first year: same title, year + 1, no identifiers
        {"title": a["title"], "year": a["year"] + 1, "authors": a["authors"], "label": "include"},
        # a small title difference, same first author and year
        {"title": b["title"].replace("acne", "acne vulgaris", 1) if "acne" in b["title"] else b["title"] + " x",
         "year": b["year"], "authors": b["authors"][:1]},
    ]
    assert post_records(client, auth, project_id, copies, source="CINAHL").get_json()["imported"] == 2
    url = f"/api/v1/asl/projects/{project_id}/possible-duplicates"
    listed = client.get(url, headers=auth)
    assert listed.status_code == 200 and "X-Pagination" in listed.headers
    pairs = listed.get_json()
    ids = {r[0]: r[1] for r in sql(database_url, "SELECT title || '|' || year, id FROM literature")}
    a_id, a_copy = ids[f"{a['title']}|{a['year']}"], ids[f"{a['title']}|{a['year'] + 1}"]
    reasons = {tuple(p["literature_ids"]): p["reason"] for p in pairs}
    assert reasons[tuple(sorted((a_id, a_copy)))].startswith("same title, publication year differs")
    b_pair = [p for p in pairs if p["reason"].startswith("similar title")]
    assert len(b_pair) == 1 and 0.9 <= b_pair[0]["score"] < 1
    assert {r["title"] for r in b_pair[0]["records"]} >= {b["title"]}

    merged = client.post(f"{url}/merge", headers=auth, json={"keep_id": a_id, "merge_ids": [a_copy]})
    assert merged.status_code == 200, merged.get_json()
    kept = merged.get_json()["record"]
    assert kept["label"] == "include" and kept["source_databases"] == ["PubMed", "CINAHL"]
    assert sql(database_url, "SELECT count(*) FROM literature WHERE id = %s", a_copy)[0][0] == 0

    dismissed = client.post(f"{url}/dismiss", headers=auth, json={"literature_ids": b_pair[0]["literature_ids"]})
    assert dismissed.status_code == 200
    assert client.get(url, headers=auth).get_json() == []

    counts = client.get(f"/api/v1/asl/projects/{project_id}/imports", headers=auth).get_json()
    assert counts["duplicates_merged_by_reviewers"] == 1 and counts["duplicates_removed"] == 1


def test_merge_and_dismiss_reject_bad_input_and_write_nothing(client, auth, project_id, database_url) -> None:
    post_records(client, auth, project_id, [{"title": "One"}, {"title": "Two"}])
    one, two = [r[0] for r in sql(database_url, "SELECT id FROM literature ORDER BY id")]
    url = f"/api/v1/asl/projects/{project_id}/possible-duplicates"
    cases = [
        ("merge", {"keep_id": one}, 422, "merge_ids"),
        ("merge", {"keep_id": one, "merge_ids": [one]}, 422, "merge_ids"),
        ("merge", {"keep_id": one, "merge_ids": [999999]}, 404, "merge_ids"),
        ("merge", {"keep_id": 999999, "merge_ids": [two]}, 404, "keep_id"),
        ("dismiss", {"literature_ids": [one]}, 422, "literature_ids"),
        ("dismiss", {"literature_ids": [one, 999999]}, 404, "literature_ids"),
    ]
    for action, body, status, field in cases:
        response = client.post(f"{url}/{action}", headers=auth, json=body)
        assert response.status_code == status, (body, response.get_json())
        assert field in str(response.get_json().get("errors")), response.get_json()
    assert sql(database_url, "SELECT count(*) FROM literature")[0][0] == 2
    assert sql(database_url, "SELECT count(*) FROM duplicate_decisions")[0][0] == 0
