"""Cache: GET /api/v1/cache/stats and DELETE /api/v1/cache?prefix=."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from app.api.auth import require_admin
from app.api.cache.schemas import CacheDeleteArgsSchema, CacheDeleteResultSchema, CacheStatsSchema
from app.cache import get_cache

blp = Blueprint("cache", __name__, url_prefix="/api/v1/cache", description="The shared cache (LLM answers, ...)")


@blp.route("/stats")
class CacheStats(MethodView):
    @blp.response(200, CacheStatsSchema)
    def get(self):
        """Cache size, expired entries and hits / misses, per key prefix (admins only: fleet-wide figures)."""
        require_admin()
        return get_cache(current_app.config).stats()


@blp.route("")
class CacheEntries(MethodView):
    @blp.arguments(CacheDeleteArgsSchema, location="query")
    @blp.response(200, CacheDeleteResultSchema)
    def delete(self, args):
        """Delete every cache entry whose key starts with ``prefix`` (admins only: the cache is shared)."""
        require_admin()
        deleted = get_cache(current_app.config).delete_prefix(args["prefix"])
        return {"prefix": args["prefix"], "deleted": deleted}
