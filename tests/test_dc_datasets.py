"""Datasets: upload CSV/XLSX with its health check (good and hostile files), ownership, delete, templates."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, pool, text

from tests.support.workbooks import xlsx_bytes, zip_bomb_xlsx

FIXTURE = Path(__file__).parent / "fixtures" / "clinical" / "aci_bench_30.csv"


def upload(client: FlaskClient, auth: dict[str, str], data: bytes, name: str, **form: str):
    return client.post("/api/v1/dc/datasets", headers=auth, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), name), **form})


def codes(health: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for issue in health["issues"]:
        found.setdefault(issue["code"], []).append(issue)
    return found


def test_upload_the_clinical_csv(client: FlaskClient, auth: dict[str, str], database_url: str) -> None:
    response = upload(client, auth, FIXTURE.read_bytes(), "aci.csv")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["rows"] == 30
    assert body["columns"][:2] == ["encounter_id", "note"]
    health = body["health"]
    assert health["header_detected"] and health["encoding"] == "utf-8" and health["rows"] == 30
    assert "encounter_id" in health["id_column_candidates"]
    assert "duplicate_ids" not in codes(health)
    # gold_ejection_fraction is filled in 2 of 30 rows: above the 5 % near-empty threshold
    assert "near_empty_column" not in codes(health)
    engine = create_engine(database_url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT data FROM dc_records ORDER BY row_index LIMIT 1")).scalar_one()
    engine.dispose()
    assert stored["encounter_id"] == "D2N001" and stored["note"].startswith("CHIEF COMPLAINT")
    # the health report never carries cell values
    assert "Martha" not in str(health)
    again = client.get(f"/api/v1/dc/datasets/{body['id']}/health", headers=auth)
    assert again.status_code == 200 and again.get_json() == health


def test_health_flags_what_a_researcher_must_fix(client: FlaskClient, auth: dict[str, str]) -> None:
    rows = [["record_id", "note", "empty", "sparse", "value"]]
    for i in range(40):
        rows.append([f"R{i % 38}", f"Note {i}: seen today." + (" contact jane.doe@example.org" if i == 3 else "")
                     + (" call 555-123-4567" if i == 4 else "") + (" SSN 123-45-6789" if i == 5 else ""),
                     "", "x" if i == 0 else "", "12" if i % 10 else "high"])
    rows.append(["R99", "x" * 12000, "", "", "3"])
    csv_text = "\n".join(",".join(f'"{c}"' for c in r) for r in rows) + "\n"
    body = upload(client, auth, csv_text.encode(), "notes.csv").get_json()
    found = codes(body["health"])
    assert found["empty_column"][0]["column"] == "empty"
    assert found["near_empty_column"][0]["column"] == "sparse"
    assert found["duplicate_ids"][0]["column"] == "record_id" and found["duplicate_ids"][0]["count"] == 2
    assert found["mixed_types"][0]["column"] == "value"
    assert found["long_cells"][0]["rows"] == [42]
    patterns = {i["pattern"] for i in found["suspected_identifiers"]}
    assert patterns == {"e-mail address", "phone number", "US social security number"}
    assert "jane.doe" not in str(body["health"]) and "123-45-6789" not in str(body["health"])


def test_xlsx_sheet_choice_formulas_merged_and_hidden_sheets(client: FlaskClient, auth: dict[str, str]) -> None:
    rows = [["id", "note", "total"], [1, "First note", "=1+2"], [2, "Second note", 7], [3, "Third", 8]]
    data = xlsx_bytes(rows, merged="A6:B6", hidden_sheet=True, extra_sheet=[["pid", "text"], ["a", "b"]])
    body = upload(client, auth, data, "notes.xlsx").get_json()
    assert body["rows"] == 3 and body["sheet"] == "Notes" and body["columns"] == ["id", "note", "total"]
    found = codes(body["health"])
    assert found["formula_cells"][0]["cells"] == ["C2"]
    assert found["merged_cells"][0]["count"] == 1
    assert found["hidden_sheets"][0]["sheets"] == ["Secret"]
    second = upload(client, auth, data, "notes.xlsx", sheet="Second")
    assert second.status_code == 201 and second.get_json()["columns"] == ["pid", "text"]
    missing = upload(client, auth, data, "notes.xlsx", sheet="Nope")
    assert missing.status_code == 422 and "sheet" in missing.get_json()["errors"]


def test_no_header_is_reported_and_columns_named(client: FlaskClient, auth: dict[str, str]) -> None:
    body = upload(client, auth, b"1,45,2020-01-02\n2,50,2020-01-03\n", "plain.csv").get_json()
    assert body["columns"] == ["column_1", "column_2", "column_3"] and body["rows"] == 2
    assert "no_header" in codes(body["health"])


@pytest.mark.parametrize(("data", "name", "status", "words"), [
    (b"", "empty.csv", 422, "empty"),
    (b"PK\x03\x04garbage-not-a-zip" * 10, "broken.xlsx", 422, "damaged"),
    (b"%PDF-1.4 binary", "scan.csv", 415, "PDF"),
    (b"id,note\n1,ok\n", "notes.xlsx", 422, "not a ZIP"),
    (b"id,note\n", "header-only.csv", 422, "no data rows"),
])
def test_hostile_and_unreadable_files_are_clear_4xx(client, auth, data, name, status, words) -> None:
    response = upload(client, auth, data, name)
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert words in body["message"] and body["errors"]["file"]


def test_truncated_xlsx_is_a_422(client: FlaskClient, auth: dict[str, str]) -> None:
    data = xlsx_bytes([["id", "note"], [1, "a"]])
    response = upload(client, auth, data[: len(data) // 2], "truncated.xlsx")
    assert response.status_code == 422 and "XLSX" in response.get_json()["message"]


def test_zip_bomb_is_refused_before_unpacking(client: FlaskClient, auth: dict[str, str]) -> None:
    response = upload(client, auth, zip_bomb_xlsx(), "bomb.xlsx")
    assert response.status_code == 422 and "zip bomb" in response.get_json()["message"]


def test_sheet_spanning_the_whole_grid_is_refused(client: FlaskClient, auth: dict[str, str]) -> None:
    response = upload(client, auth, xlsx_bytes([["id", "note"], [1, "a"]], far_cell="XFD1048576"), "wide.xlsx")
    assert response.status_code == 422 and "DC_MAX_SHEET_CELLS" in response.get_json()["message"]


def test_csv_with_formulas_is_kept_as_text_and_flagged(client: FlaskClient, auth: dict[str, str]) -> None:
    data = b'id,note\n1,"=HYPERLINK(""http://evil"",""x"")"\n2,+cmd|calc\n3,-2 is fine\n4,@SUM(A1)\n'
    body = upload(client, auth, data, "formulas.csv").get_json()
    issue = codes(body["health"])["formula_cells"][0]
    assert issue["column"] == "note" and issue["count"] == 3


def test_a_million_empty_rows_is_a_report_not_a_hang(client: FlaskClient, auth: dict[str, str]) -> None:
    data = b"id,note\n1,first\n" + b",\n" * 1_000_000 + b"2,last\n"
    response = upload(client, auth, data, "sparse.csv")
    assert response.status_code == 201
    body = response.get_json()
    assert body["rows"] == 2
    assert codes(body["health"])["empty_rows_skipped"][0]["count"] == 1_000_000


def test_datasets_belong_to_their_owner_and_delete_removes_cache(client, auth, make_token) -> None:
    body = upload(client, auth, FIXTURE.read_bytes(), "aci.csv").get_json()
    other = {"Authorization": f"Bearer {make_token('bob')}"}
    assert client.get(f"/api/v1/dc/datasets/{body['id']}", headers=other).status_code == 404
    assert client.get(f"/api/v1/dc/datasets/{body['id']}/health", headers=other).status_code == 404
    assert client.delete(f"/api/v1/dc/datasets/{body['id']}", headers=other).status_code == 404
    listed = client.get("/api/v1/dc/datasets", headers=auth).get_json()
    assert [d["id"] for d in listed] == [body["id"]]
    from app.cache import get_cache

    cache = get_cache(client.application.config, _engine(client))
    key = f"dc:health:{body['health']['sha256']}"
    assert cache.get(key) is not None
    cache.set(f"dc:extraction:{body['id']}:answer", {"answer": {}})
    cache.set(f"dc:extraction:{body['id'] + 1}:answer", {"answer": {}})  # another dataset's: kept
    assert client.delete(f"/api/v1/dc/datasets/{body['id']}", headers=auth).status_code == 204
    assert cache.get(key) is None and cache.get(f"dc:extraction:{body['id']}:answer") is None
    assert cache.get(f"dc:extraction:{body['id'] + 1}:answer") is not None
    assert client.get(f"/api/v1/dc/datasets/{body['id']}", headers=auth).status_code == 404


def _engine(client: FlaskClient):
    from app.extensions import db

    with client.application.app_context():
        return db.engine


def test_templates_are_valid_schemas(client: FlaskClient, auth: dict[str, str]) -> None:
    from app.services.dc.field_schema import load_field_schema

    templates = client.get("/api/v1/dc/templates", headers=auth).get_json()
    assert {t["name"] for t in templates} == {"discharge_summary", "pathology_report"}
    for template in templates:
        assert load_field_schema({"fields": template["fields"]})
