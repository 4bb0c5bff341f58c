"""GET /api/v1/cache/stats and DELETE /api/v1/cache?prefix= against the PostgreSQL cache."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from app.cache import get_cache
from app.extensions import db


def fill(app: Flask) -> None:
    with app.app_context():
        cache = get_cache(app.config)
        # the process's cache object outlives a test: hits and misses an earlier test counted (e.g. a dc upload's
        # health look-up) are still pending in memory; persist them now and start from empty counters
        cache.flush_counters()
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM app_cache_counters"))
        for i in range(3):
            cache.set(f"asl:llm:{i}", {"decision": "include"}, ttl=600)
        cache.set("dc:health:db", "ok", ttl=-1)
        cache.get("asl:llm:0")
        cache.get("asl:llm:nope")


def test_stats(client: FlaskClient, admin_auth: dict[str, str], app: Flask) -> None:
    fill(app)
    response = client.get("/api/v1/cache/stats", headers=admin_auth)
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 4 and body["expired"] == 1
    assert body["by_prefix"]["asl:llm:"]["total"] == 3
    assert body["by_prefix"]["dc:health:"] == {"total": 1, "expired": 1, "hits": 0, "misses": 0}
    assert body["hits"] >= 1 and body["misses"] >= 1


def test_delete_by_prefix(client: FlaskClient, admin_auth: dict[str, str], app: Flask) -> None:
    fill(app)
    response = client.delete("/api/v1/cache?prefix=asl:llm:", headers=admin_auth)
    assert response.status_code == 200
    assert response.get_json() == {"prefix": "asl:llm:", "deleted": 3}
    assert client.get("/api/v1/cache/stats", headers=admin_auth).get_json()["total"] == 1


def test_delete_needs_a_prefix(client: FlaskClient, admin_auth: dict[str, str], app: Flask) -> None:
    fill(app)
    response = client.delete("/api/v1/cache", headers=admin_auth)
    assert 400 <= response.status_code < 500
    assert "prefix" in str(response.get_json()["errors"])
    response = client.delete("/api/v1/cache?prefix=", headers=admin_auth)
    assert 400 <= response.status_code < 500
    assert client.get("/api/v1/cache/stats", headers=admin_auth).get_json()["total"] == 4


def test_cache_api_needs_a_token(client: FlaskClient) -> None:
    assert client.get("/api/v1/cache/stats").status_code == 401
    assert client.delete("/api/v1/cache?prefix=asl:").status_code == 401


def test_only_admins_read_fleet_stats_or_empty_the_shared_cache(
    client: FlaskClient, auth: dict[str, str], admin_auth: dict[str, str], app: Flask
) -> None:
    fill(app)
    stats = client.get("/api/v1/cache/stats", headers=auth)
    assert stats.status_code == 403 and stats.get_json()["code"] == 403
    deleted = client.delete("/api/v1/cache?prefix=a", headers=auth)
    assert deleted.status_code == 403
    deleted = client.delete("/api/v1/cache?prefix=asl:", headers=auth)
    assert deleted.status_code == 403
    assert client.get("/api/v1/cache/stats", headers=admin_auth).get_json()["total"] == 4
