"""Hostile API input that used to end as a 500 (issue 11): ids beyond 32 bits, absurd pages, NUL characters and
lone surrogates in JSON strings, deeply nested JSON — each is a 4xx JSON error and writes nothing."""

from __future__ import annotations

import json

import pytest

from tests.support.engine import scalar

BIG = 2**31
ID_ROUTES = [
    ("GET", "/api/v1/asl/projects/{id}"), ("PATCH", "/api/v1/asl/projects/{id}"),
    ("DELETE", "/api/v1/asl/projects/{id}"), ("GET", "/api/v1/asl/projects/{id}/literatures"),
    ("POST", "/api/v1/asl/projects/{id}/literatures"), ("POST", "/api/v1/asl/projects/{id}/screening"),
    ("GET", "/api/v1/asl/projects/{id}/tasks"), ("GET", "/api/v1/asl/tasks/{id}"),
    ("GET", "/api/v1/asl/tasks/{id}/batches"), ("POST", "/api/v1/asl/tasks/{id}/cancel"),
    ("POST", "/api/v1/asl/tasks/{id}/retry"), ("GET", "/api/v1/asl/tasks/{id}/results"),
    ("GET", "/api/v1/asl/tasks/{id}/export"), ("PATCH", "/api/v1/asl/results/{id}"),
]


@pytest.mark.parametrize("method,route", ID_ROUTES)
@pytest.mark.parametrize("ident", [BIG, 2**63, 10**30])
def test_ids_beyond_32_bits_are_404(client, auth, method: str, route: str, ident: int) -> None:
    response = client.open(route.format(id=ident), method=method, headers=auth, json={})
    assert response.status_code == 404
    assert response.get_json()["code"] == 404


@pytest.mark.parametrize("route", ["/api/v1/asl/projects", "/api/v1/asl/projects/{pid}/literatures",
                                   "/api/v1/asl/projects/{pid}/tasks"])
def test_a_huge_page_is_422_naming_page(client, auth, project_id, route: str) -> None:
    response = client.get(route.format(pid=project_id) + "?page=9223372036854775807", headers=auth)
    assert response.status_code == 422
    assert "page" in json.dumps(response.get_json()["errors"])


@pytest.mark.parametrize("bad", ["a\u0000b", "\ud800", "x\udfffy"])
def test_nul_and_lone_surrogates_in_json_strings_are_422_naming_the_field(client, auth, project_id,
                                                                         database_url, bad: str) -> None:
    body = json.dumps({"records": [{"title": "fine"}, {"title": bad}]})  # ensure_ascii: \\u escapes
    response = client.post(f"/api/v1/asl/projects/{project_id}/literatures", data=body,
                           content_type="application/json", headers=auth)
    assert response.status_code == 422
    assert "records.1.title" in json.dumps(response.get_json()["errors"])
    assert scalar(database_url, "SELECT count(*) FROM literature") == 0
    patched = client.patch(f"/api/v1/asl/projects/{project_id}", data=json.dumps({"name": bad}),
                           content_type="application/json", headers=auth)
    assert patched.status_code == 422 and "name" in json.dumps(patched.get_json()["errors"])
    created = client.post("/api/v1/asl/projects", data=json.dumps({"name": "n", "picos": {"P": bad}}),
                          content_type="application/json", headers=auth)
    assert created.status_code == 422 and "picos.P" in json.dumps(created.get_json()["errors"])
    assert scalar(database_url, "SELECT count(*) FROM projects") == 1


def test_json_nested_1000_deep_is_refused_before_the_ownership_check(client, auth) -> None:
    body = "[" * 1000 + "]" * 1000
    for project in (1, 999_999):  # any id, owned or not
        response = client.post(f"/api/v1/asl/projects/{project}/literatures", data=body,
                               content_type="application/json", headers=auth)
        assert response.status_code == 400
        assert "nested" in response.get_json()["message"]


def test_brackets_inside_strings_do_not_count_as_nesting(client, auth, project_id) -> None:
    records = [{"title": "[[[[" * 100 + "{{{{" * 100}]
    response = client.post(f"/api/v1/asl/projects/{project_id}/literatures", json={"records": records},
                           headers=auth)
    assert response.status_code == 201


def test_the_openapi_document_is_valid_and_documents_error_answers(client) -> None:
    from openapi_spec_validator import validate

    spec = client.get("/api/openapi.json").get_json()
    validate(spec)
    upload = spec["paths"]["/api/v1/asl/projects/{project_id}/literatures"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert not [p for p in upload.get("parameters", []) if p.get("in") == "body"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            if path.startswith("/api/v1"):
                assert "401" in operation["responses"], (method, path)
            if "{" in path:
                assert "404" in operation["responses"], (method, path)
    assert "403" in spec["paths"]["/api/v1/cache"]["delete"]["responses"]


def test_retry_of_an_old_run_while_a_new_one_is_active_is_409(app, client, auth, project_id, monkeypatch,
                                                              database_url) -> None:
    from tests.support.engine import add_records
    from tests.support.screening import models_configured, start

    models_configured(app, monkeypatch)
    add_records(app, project_id, 3)
    first = start(client, auth, project_id).get_json()
    assert client.post(f"/api/v1/asl/tasks/{first['id']}/cancel", headers=auth).status_code == 202
    assert start(client, auth, project_id).status_code == 202
    retried = client.post(f"/api/v1/asl/tasks/{first['id']}/retry", headers=auth)
    assert retried.status_code == 409, retried.get_json()
    assert scalar(database_url, "SELECT count(*) FROM screening_tasks WHERE status IN ('pending', 'running')") == 1
