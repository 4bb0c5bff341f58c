"""Roles and token lifetime from the command line: ``users create --admin``, ``tokens create --expires-in``,
``tokens list`` and ``tokens revoke`` (expired and revoked tokens get 401)."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from tests.support import database
from tests.support.processes import subprocess_env


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=subprocess_env(database_url),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.process  # runs the litscreen CLI as a subprocess
def test_admin_flag_makes_an_admin_and_only_admins_manage_the_cache(database_url: str, client) -> None:
    assert cli(database_url, "users", "create", "root", "--admin").returncode == 0
    assert cli(database_url, "users", "create", "bob").returncode == 0
    root = cli(database_url, "tokens", "create", "root").stdout.strip()
    bob = cli(database_url, "tokens", "create", "bob").stdout.strip()
    with psycopg.connect(database.conninfo(database_url)) as conn:
        admins = dict(conn.execute("SELECT name, is_admin FROM users").fetchall())
    assert admins == {"root": True, "bob": False}
    assert client.delete("/api/v1/cache?prefix=a", headers={"Authorization": f"Bearer {bob}"}).status_code == 403
    assert client.get("/api/v1/cache/stats", headers={"Authorization": f"Bearer {bob}"}).status_code == 403
    assert client.get("/api/v1/cache/stats", headers={"Authorization": f"Bearer {root}"}).status_code == 200


@pytest.mark.process  # runs the litscreen CLI as a subprocess
def test_list_and_revoke_tokens(database_url: str, client) -> None:
    assert cli(database_url, "users", "create", "carol").returncode == 0
    first = cli(database_url, "tokens", "create", "carol").stdout.strip()
    second = cli(database_url, "tokens", "create", "carol", "--expires-in", "30").stdout.strip()
    assert client.get("/api/v1/asl/projects", headers={"Authorization": f"Bearer {first}"}).status_code == 200

    listing = cli(database_url, "tokens", "list", "carol")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.strip().splitlines()
    assert lines[0].split("\t") == ["id", "prefix", "created", "expires", "last_used", "revoked"]
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == 2
    assert first not in listing.stdout and second not in listing.stdout  # never the secret
    assert rows[0][3] == "-" and rows[1][3] != "-"  # the second one expires
    assert rows[0][4] != "-"  # first was used

    revoked = cli(database_url, "tokens", "revoke", rows[0][0])
    assert revoked.returncode == 0, revoked.stderr
    answer = client.get("/api/v1/asl/projects", headers={"Authorization": f"Bearer {first}"})
    assert answer.status_code == 401 and answer.get_json()["code"] == 401
    assert client.get("/api/v1/asl/projects", headers={"Authorization": f"Bearer {second}"}).status_code == 200
    assert cli(database_url, "tokens", "list", "carol").stdout.strip().splitlines()[1].split("\t")[5] != "-"
    unknown = cli(database_url, "tokens", "revoke", "999999")
    assert unknown.returncode != 0 and "999999" in unknown.stderr


@pytest.mark.process  # runs the litscreen CLI as a subprocess
def test_an_expired_token_is_401(database_url: str, client) -> None:
    assert cli(database_url, "users", "create", "dave").returncode == 0
    token = cli(database_url, "tokens", "create", "dave", "--expires-in", "1").stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/asl/projects", headers=headers).status_code == 200
    with psycopg.connect(database.conninfo(database_url)) as conn:  # a day passes
        conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second'")
    assert client.get("/api/v1/asl/projects", headers=headers).status_code == 401
    bad = cli(database_url, "tokens", "create", "dave", "--expires-in", "0")
    assert bad.returncode != 0
