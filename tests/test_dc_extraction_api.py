"""Starting an extraction: field-schema and parameter validation (422 naming the field, nothing written)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.support.engine import query

FIXTURE = Path(__file__).parent / "fixtures" / "clinical" / "aci_bench_30.csv"
FIELDS = [{"name": "age", "type": "integer", "description": "Patient age in years", "required": True}]


@pytest.fixture
def dataset_id(client: FlaskClient, auth: dict[str, str]) -> int:
    response = client.post("/api/v1/dc/datasets", headers=auth, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(FIXTURE.read_bytes()), "aci.csv")})
    assert response.status_code == 201
    return response.get_json()["id"]


def start(client, auth, dataset_id, **body):
    payload = {"id_column": "encounter_id", "text_columns": ["note"], "schema": {"fields": FIELDS}, **body}
    return client.post(f"/api/v1/dc/datasets/{dataset_id}/extractions", json=payload, headers=auth)


@pytest.mark.parametrize(("fields", "where"), [
    ([], ["fields"]),
    ([{"name": "age", "type": "colour", "description": "x"}], ["fields", "0", "type"]),
    ([{"name": "1age", "type": "integer", "description": "x"}], ["fields", "0", "name"]),
    ([{"name": "age", "type": "integer"}], ["fields", "0", "description"]),
    ([{"name": "sex", "type": "enum", "description": "x"}], ["fields", "0", "enum"]),
    ([{"name": "sex", "type": "enum", "description": "x", "enum": ["a", "A"]}], ["fields", "0", "enum"]),
    ([{"name": "ef", "type": "number", "description": "x", "unit": "zorks"}], ["fields", "0", "unit"]),
    ([{"name": "ef", "type": "string", "description": "x", "unit": "mg"}], ["fields", "0", "unit"]),
    ([{"name": "a", "type": "string", "description": "x"}, {"name": "a", "type": "date", "description": "y"}],
     ["fields"]),
])
def test_bad_schemas_are_422_naming_the_field(client, auth, dataset_id, fields, where, database_url) -> None:
    response = start(client, auth, dataset_id, schema={"fields": fields})
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]["json"]["schema"]
    for key in where:
        errors = errors[key]
    assert errors
    assert query(database_url, "SELECT count(*) FROM screening_tasks")[0][0] == 0


def test_unknown_columns_and_gold_fields_are_422(client, auth, dataset_id, monkeypatch, database_url) -> None:
    monkeypatch.setitem(client.application.config, "SCREENING_MODELS", "sim:model-a,sim:model-b")
    monkeypatch.setitem(client.application.config, "SIM_BASE_URL", "http://127.0.0.1:9/v1")
    bad_id = start(client, auth, dataset_id, id_column="nope")
    assert bad_id.status_code == 422 and "id_column" in bad_id.get_json()["errors"]["json"]
    bad_text = start(client, auth, dataset_id, text_columns=["note", "summary"])
    assert bad_text.status_code == 422 and "'summary'" in bad_text.get_json()["message"]
    bad_gold = start(client, auth, dataset_id, gold_columns={"age": "gold_weight"})
    assert bad_gold.status_code == 422 and "gold_columns" in bad_gold.get_json()["errors"]["json"]
    not_a_field = start(client, auth, dataset_id, gold_columns={"weight": "gold_age"})
    assert not_a_field.status_code == 422 and "gold_columns" in not_a_field.get_json()["errors"]["json"]
    assert query(database_url, "SELECT count(*) FROM screening_tasks")[0][0] == 0


def test_another_users_dataset_is_404_and_no_models_is_409(client, auth, dataset_id, make_token, monkeypatch):
    other = {"Authorization": f"Bearer {make_token('bob')}"}
    assert start(client, other, dataset_id).status_code == 404
    monkeypatch.setitem(client.application.config, "SCREENING_MODELS", "")
    assert start(client, auth, dataset_id).status_code == 409
