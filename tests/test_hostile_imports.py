"""Hostile import files (issue 11): every one is parsed or refused in linear time, field limits hold on every
import path, NUL characters anywhere are a 422 naming the line, and nothing is written when refused."""

from __future__ import annotations

import io

import pytest

from app.importers import parse_file
from app.importers.limits import FIELD_LIMITS, fold_ris_continuations
from tests.hostile import generate
from tests.support.engine import scalar


def upload(client, auth, project_id: int, name: str, data: bytes):
    return client.post(f"/api/v1/asl/projects/{project_id}/literatures", headers=auth,
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def test_a_2mb_bibtex_field_is_imported_with_its_title_cut_to_the_limit(client, auth, project_id,
                                                                          database_url) -> None:
    response = upload(client, auth, project_id, "hostile.bib", generate.bibtex_huge_field())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["imported"] == 1
    assert any("title truncated" in w for w in body["warnings"])
    assert any("LaTeX markup" in w for w in body["warnings"])
    assert FIELD_LIMITS["title"] - 10 <= scalar(database_url, "SELECT max(length(title)) FROM literature") \
        <= FIELD_LIMITS["title"]


def test_a_5mb_ris_of_continuation_lines_is_imported(client, auth, project_id, database_url) -> None:
    response = upload(client, auth, project_id, "hostile.ris", generate.ris_continuations())
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["imported"] == 1
    assert FIELD_LIMITS["abstract"] - 10 <= scalar(database_url, "SELECT length(abstract) FROM literature") \
        <= FIELD_LIMITS["abstract"]


def test_a_giant_wrapped_title_is_cut_and_reported(client, auth, project_id, database_url) -> None:
    response = upload(client, auth, project_id, "title.ris", generate.ris_giant_title())
    assert response.status_code == 201, response.get_json()
    assert any("record 0: title truncated" in w for w in response.get_json()["warnings"])
    assert FIELD_LIMITS["title"] - 10 <= scalar(database_url, "SELECT length(title) FROM literature") \
        <= FIELD_LIMITS["title"]


def test_a_50mb_single_line_is_refused_naming_the_line(client, auth, project_id, database_url) -> None:
    response = upload(client, auth, project_id, "one-line.ris", generate.ris_one_line())
    assert response.status_code == 422
    assert "Line 2" in response.get_json()["message"] and "MAX_IMPORT_LINE_CHARS" in response.get_json()["message"]
    assert scalar(database_url, "SELECT count(*) FROM literature") == 0


def test_a_50mb_bibtex_full_of_latex_is_parsed() -> None:
    data = generate.bibtex_50mb()
    assert 49 * generate.MB < len(data) <= 50 * generate.MB
    parsed = parse_file("big.bib", data)
    assert len(parsed.records) > 10_000
    assert parsed.records[0]["title"].startswith("Effects of nudges on prescribing – trial 0")
    assert any("LaTeX markup" in w for w in parsed.warnings)


@pytest.mark.parametrize("name,data", [("nul.ris", generate.nul_after_sniff()),
                                       ("utf16.ris", generate.utf16_with_nul())])
def test_nul_characters_anywhere_are_a_422_naming_the_line(client, auth, project_id, database_url,
                                                           name: str, data: bytes) -> None:
    response = upload(client, auth, project_id, name, data)
    assert response.status_code == 422, response.get_json()
    assert "NUL" in response.get_json()["message"] and "line" in response.get_json()["message"]
    assert "file" in response.get_json()["errors"]
    assert scalar(database_url, "SELECT count(*) FROM literature") == 0


def test_folding_keeps_what_rispy_reads() -> None:
    text = ("TY  - JOUR\nTI  - A title\n  continued here\nAU  - Smith, J\nAU  - Doe, J\nKW  - one\ntwo\n"
            "AB  - first\nsecond\n\nthird\nER  - \n")
    import rispy

    assert rispy.loads(fold_ris_continuations(text)) == rispy.loads(text)


def test_json_imports_obey_the_same_limits(client, auth, project_id, database_url) -> None:
    record = {"title": "t" * (FIELD_LIMITS["title"] + 1)}
    response = client.post(f"/api/v1/asl/projects/{project_id}/literatures", json={"records": [record]},
                           headers=auth)
    assert response.status_code == 422
    assert "title" in str(response.get_json()["errors"])
    assert scalar(database_url, "SELECT count(*) FROM literature") == 0
