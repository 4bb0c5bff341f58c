"""Attaching full texts: one PDF, a ZIP matched by literature id / DOI / PMID, and every kind of bad file."""

from __future__ import annotations

import hashlib
import zipfile

from tests.fulltext_support import (
    QUALITATIVE,
    RCT,
    REVIEW,
    add_matching_records,
    blank_pdf,
    encrypted_pdf,
    heart_failure_project,
    pdf_bytes,
    upload,
    zip_of,
)
from tests.support.engine import query


def test_one_pdf_is_attached_and_summarised(client, auth, database_url) -> None:
    project_id = heart_failure_project(client, auth)
    ids = add_matching_records(client, auth, project_id)
    data = pdf_bytes(REVIEW)

    response = upload(client, auth, project_id, "review.pdf", data, ids[REVIEW])

    assert response.status_code == 201, response.get_json()
    assert response.get_json() == {"attached": 1, "unmatched": [], "failed": [], "literature_ids": [ids[REVIEW]]}
    summary = client.get(f"/api/v1/asl/literatures/{ids[REVIEW]}/fulltext", headers=auth).get_json()
    assert summary["sha256"] == hashlib.sha256(data).hexdigest()
    assert summary["pages"] == 4 and summary["chars"] > 20000 and summary["text_available"] is True
    # the parsed text is cached by the PDF's hash
    assert query(database_url, "SELECT count(*) FROM app_cache WHERE key = %s",
                 "asl:pdf:" + summary["sha256"])[0][0] == 1
    # attaching again replaces the row, never a second one
    again = upload(client, auth, project_id, "review-v2.pdf", pdf_bytes(RCT), ids[REVIEW])
    assert again.status_code == 201
    assert query(database_url, "SELECT count(*), min(pages) FROM fulltexts WHERE literature_id = %s",
                 ids[REVIEW])[0] == (1, 3)


def test_bad_requests_are_4xx_naming_the_field(client, auth, make_token) -> None:
    project_id = heart_failure_project(client, auth)
    ids = add_matching_records(client, auth, project_id)
    missing_id = upload(client, auth, project_id, "a.pdf", pdf_bytes(RCT))
    assert missing_id.status_code == 422 and "literature_id" in missing_id.get_json()["errors"]
    not_a_number = upload(client, auth, project_id, "a.pdf", pdf_bytes(RCT), "abc")
    assert not_a_number.status_code == 422 and "literature_id" in not_a_number.get_json()["errors"]
    no_file = client.post(f"/api/v1/asl/projects/{project_id}/fulltexts", data={"literature_id": "1"},
                          headers=auth, content_type="multipart/form-data")
    assert no_file.status_code == 422
    other_user = {"Authorization": f"Bearer {make_token('bob')}"}
    other_project = heart_failure_project(client, other_user)
    foreign = upload(client, auth, other_project, "a.pdf", pdf_bytes(RCT), ids[RCT])
    assert foreign.status_code == 404  # bob's project is not alice's
    wrong_record = upload(client, other_user, other_project, "a.pdf", pdf_bytes(RCT), ids[RCT])
    assert wrong_record.status_code == 422 and "literature_id" in wrong_record.get_json()["errors"]
    assert client.get(f"/api/v1/asl/literatures/{ids[RCT]}/fulltext", headers=other_user).status_code == 404
    assert client.get(f"/api/v1/asl/literatures/{ids[RCT]}/fulltext", headers=auth).status_code == 404


def test_unusable_pdfs_are_per_file_failures(client, auth, database_url) -> None:
    project_id = heart_failure_project(client, auth)
    ids = add_matching_records(client, auth, project_id)
    good = pdf_bytes(QUALITATIVE)
    cases = {
        "scan.pdf": (blank_pdf(), "no text layer"),
        "locked.pdf": (encrypted_pdf(good), "encrypted"),
        "broken.pdf": (good[: len(good) // 2], "corrupt"),
        "notes.txt": (b"these are my notes, not a PDF", "not a PDF"),
    }
    for name, (data, reason) in cases.items():
        response = upload(client, auth, project_id, name, data, ids[QUALITATIVE])
        body = response.get_json()
        assert response.status_code == 201, body
        assert body["attached"] == 0 and body["failed"][0]["name"] == name, body
        assert reason in body["failed"][0]["reason"], body
    # only the text-less scan is stored (so it counts as retrieved but not usable); the rest wrote nothing
    assert query(database_url, "SELECT text_available FROM fulltexts") == [(False,)]
    summary = client.get(f"/api/v1/asl/literatures/{ids[QUALITATIVE]}/fulltext", headers=auth).get_json()
    assert summary["text_available"] is False and summary["pages"] == 1


def test_a_zip_is_matched_by_id_doi_and_pmid(client, auth, database_url) -> None:
    project_id = heart_failure_project(client, auth)
    ids = add_matching_records(client, auth, project_id)
    archive = zip_of({
        f"papers/{ids[RCT]}.pdf": pdf_bytes(RCT),                      # literature id
        "10.1186_1752-2897-4-1.pdf": pdf_bytes(REVIEW),                # DOI with / written as _
        "PMID21052547.pdf": pdf_bytes(QUALITATIVE),                    # PMID
        "10.9999_nobody.pdf": pdf_bytes(RCT),                          # no such record
        f"{ids[RCT]}-notes.docx": b"PK not really",                    # matches nothing
        "__MACOSX/._x.pdf": b"resource fork",                          # archive metadata: ignored
    })

    response = upload(client, auth, project_id, "batch.zip", archive)

    body = response.get_json()
    assert response.status_code == 201, body
    assert body["attached"] == 3 and sorted(body["literature_ids"]) == sorted(ids.values())
    assert sorted(body["unmatched"]) == sorted(["10.9999_nobody.pdf", f"{ids[RCT]}-notes.docx"])
    assert body["failed"] == []
    assert query(database_url, "SELECT count(*) FROM fulltexts WHERE text_available")[0][0] == 3


def test_zip_bombs_and_bad_entries_fail_per_file(app, client, auth, monkeypatch, database_url) -> None:
    project_id = heart_failure_project(client, auth)
    ids = add_matching_records(client, auth, project_id)
    bomb = b"%PDF-1.4\n" + b"\0" * (20 * 1024 * 1024)     # 20 MB that deflate to ~20 KB: ratio ~1000:1
    archive = zip_of({f"{ids[RCT]}.pdf": bomb, f"{ids[REVIEW]}.pdf": pdf_bytes(REVIEW),
                      f"{ids[QUALITATIVE]}.pdf": b"plain text pretending"})
    body = upload(client, auth, project_id, "bomb.zip", archive).get_json()
    reasons = {f["name"]: f["reason"] for f in body["failed"]}
    assert body["attached"] == 1 and body["literature_ids"] == [ids[REVIEW]]
    assert "compression ratio" in reasons[f"{ids[RCT]}.pdf"]
    assert "not a PDF" in reasons[f"{ids[QUALITATIVE]}.pdf"]

    monkeypatch.setitem(app.config, "FULLTEXT_MAX_ZIP_ENTRIES", 2)
    many = zip_of({f"{i}.pdf": b"%PDF-1.4" for i in range(5)})
    body = upload(client, auth, project_id, "many.zip", many).get_json()
    assert body["attached"] == 0 and "5 entries" in body["failed"][0]["reason"]

    monkeypatch.setitem(app.config, "FULLTEXT_MAX_ZIP_UNCOMPRESSED_BYTES", 1000)
    stored = zip_of({f"{ids[QUALITATIVE]}.pdf": pdf_bytes(QUALITATIVE)}, zipfile.ZIP_STORED)
    body = upload(client, auth, project_id, "big.zip", stored).get_json()
    assert body["attached"] == 0 and "declares" in body["failed"][0]["reason"]
    broken = upload(client, auth, project_id, "broken.zip", b"PK\x03\x04 not a zip at all").get_json()
    assert broken["attached"] == 0 and "ZIP" in broken["failed"][0]["reason"]
    assert query(database_url, "SELECT literature_id FROM fulltexts") == [(ids[REVIEW],)]
