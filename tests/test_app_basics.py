"""Health, readiness, OpenAPI and the JSON error shape."""

from __future__ import annotations


def test_healthz(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_schema_at_head(client) -> None:
    from app.db.migrate import head_revision

    body = client.get("/readyz").get_json()
    assert body["status"] == "ok"
    assert body["schema"] == {"current": head_revision(), "head": head_revision()}


def test_readyz_is_503_when_database_unreachable(app) -> None:
    from sqlalchemy import create_engine

    from app.extensions import ENGINE_KEY

    real_engine = app.extensions[ENGINE_KEY]
    app.extensions[ENGINE_KEY] = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        response = app.test_client().get("/readyz")
    finally:
        app.extensions[ENGINE_KEY] = real_engine
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_openapi_document_lists_the_contract_paths(client) -> None:
    spec = client.get("/api/openapi.json").get_json()
    assert "/api/v1/asl/projects" in spec["paths"]
    assert "/api/v1/asl/projects/{project_id}" in spec["paths"]
    assert client.get("/api/docs").status_code == 200


def test_unknown_route_is_json_not_html(client, auth) -> None:
    response = client.get("/api/v1/nothing-here", headers=auth)
    assert response.status_code == 404
    body = response.get_json()
    assert body["code"] == 404 and body["status"] == "Not Found" and body["message"]


def test_wrong_method_is_json(client, auth) -> None:
    response = client.put("/api/v1/asl/projects", headers=auth, json={})
    assert response.status_code == 405
    assert response.get_json()["code"] == 405


def test_metrics_is_prometheus_text(client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
