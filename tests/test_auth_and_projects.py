"""Bearer tokens, owner scoping and project CRUD, including bad input that must write nothing."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from tests.conftest import PICOS
from tests.support import database


def count(database_url: str, table: str) -> int:
    with psycopg.connect(database.conninfo(database_url)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_no_token_is_401(client) -> None:
    response = client.get("/api/v1/asl/projects")
    assert response.status_code == 401
    assert response.get_json()["code"] == 401


def test_bad_token_is_401(client, auth) -> None:
    response = client.get("/api/v1/asl/projects", headers={"Authorization": "Bearer lsk_not-a-real-token"})
    assert response.status_code == 401
    assert "lsk_not-a-real-token" not in response.get_data(as_text=True)


def test_tokens_are_stored_hashed(database_url: str, make_token) -> None:
    token = make_token("bob")
    with psycopg.connect(database.conninfo(database_url)) as conn:
        rows = conn.execute("SELECT token_hash FROM api_tokens").fetchall()
    assert rows and all(token not in row[0] for row in rows)
    assert len(rows[0][0]) == 64


def test_project_crud(client, auth) -> None:
    created = client.post("/api/v1/asl/projects", headers=auth, json={
        "name": "Nudges", "picos": PICOS, "inclusion_criteria": "RCTs", "exclusion_criteria": "animals"})
    assert created.status_code == 201
    project = created.get_json()
    assert project["picos"]["P"] == PICOS["P"] and project["literature_count"] == 0

    listing = client.get("/api/v1/asl/projects", headers=auth)
    assert [p["id"] for p in listing.get_json()] == [project["id"]]
    assert "X-Pagination" in listing.headers

    patched = client.patch(f"/api/v1/asl/projects/{project['id']}", headers=auth, json={"name": "Renamed"})
    assert patched.status_code == 200 and patched.get_json()["name"] == "Renamed"
    assert client.get(f"/api/v1/asl/projects/{project['id']}", headers=auth).get_json()["name"] == "Renamed"

    assert client.delete(f"/api/v1/asl/projects/{project['id']}", headers=auth).status_code == 204
    assert client.get(f"/api/v1/asl/projects/{project['id']}", headers=auth).status_code == 404


def test_another_users_project_is_404(client, auth, make_token, project_id) -> None:
    other = {"Authorization": f"Bearer {make_token('mallory')}"}
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(f"/api/v1/asl/projects/{project_id}", headers=other, json={"name": "x"})
        assert response.status_code == 404, method
    assert client.get("/api/v1/asl/projects", headers=other).get_json() == []
    assert client.get(f"/api/v1/asl/projects/{project_id}", headers=auth).get_json()["name"] == "Nudging"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"picos": PICOS}, "name"),
        ({"name": "x"}, "picos"),
        ({"name": "x", "picos": "P=doctors"}, "picos"),
        ({"name": "x", "picos": {"P": "", "I": ""}}, "picos"),
        ({"name": "", "picos": PICOS}, "name"),
        ({"name": 12, "picos": PICOS}, "name"),
    ],
)
def test_bad_project_input_is_422_naming_the_field_and_writes_nothing(client, auth, database_url, body, field):
    response = client.post("/api/v1/asl/projects", headers=auth, json=body)
    assert response.status_code == 422
    errors = response.get_json()["errors"]["json"]
    assert field in errors
    assert count(database_url, "projects") == 0


def test_json_body_of_the_wrong_type_is_422(client, auth, database_url) -> None:
    response = client.post("/api/v1/asl/projects", headers=auth, json=["not", "an", "object"])
    assert response.status_code == 422
    assert count(database_url, "projects") == 0


def test_unknown_project_is_404(client, auth) -> None:
    response = client.get("/api/v1/asl/projects/999999", headers=auth)
    assert response.status_code == 404
    assert response.get_json()["message"] == "Project 999999 not found."


@pytest.mark.parametrize("page_size", [0, 100000])
def test_page_size_out_of_range_is_422(client, auth, page_size) -> None:
    response = client.get(f"/api/v1/asl/projects?page_size={page_size}", headers=auth)
    assert response.status_code == 422
    assert "page_size" in response.get_json()["errors"]["query"]


@pytest.mark.process
def test_cli_creates_users_and_prints_only_the_token(database_url: str) -> None:
    from tests.support.processes import subprocess_env

    env = subprocess_env(database_url)
    user = subprocess.run([sys.executable, "-m", "app.cli", "users", "create", "carol"], env=env,
                          capture_output=True, text=True, check=True)
    assert user.stdout.strip().isdigit()
    token = subprocess.run([sys.executable, "-m", "app.cli", "tokens", "create", "carol"], env=env,
                           capture_output=True, text=True, check=True)
    lines = token.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lsk_")
    assert lines[0] not in token.stderr
    unknown = subprocess.run([sys.executable, "-m", "app.cli", "tokens", "create", "nobody"], env=env,
                             capture_output=True, text=True)
    assert unknown.returncode != 0 and unknown.stdout == ""


def test_token_use_is_recorded_without_a_write_per_request(client, auth, database_url: str) -> None:
    def last_used() -> object:
        with psycopg.connect(database.conninfo(database_url)) as conn:
            return conn.execute("SELECT last_used_at FROM api_tokens").fetchone()[0]

    assert last_used() is None
    assert client.get("/api/v1/asl/projects", headers=auth).status_code == 200
    first = last_used()
    assert first is not None
    assert client.get("/api/v1/asl/projects", headers=auth).status_code == 200
    assert last_used() == first
