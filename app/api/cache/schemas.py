"""Marshmallow schemas for the cache API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class CachePrefixStatsSchema(Schema):
    total = fields.Integer()
    expired = fields.Integer()
    hits = fields.Integer()
    misses = fields.Integer()


class CacheStatsSchema(Schema):
    total = fields.Integer(metadata={"description": "entries stored (expired ones not yet removed included)"})
    expired = fields.Integer(metadata={"description": "stored entries past their expiry"})
    by_prefix = fields.Dict(keys=fields.String(), values=fields.Nested(CachePrefixStatsSchema))
    hits = fields.Integer(metadata={"description": "reads that found a live entry, over every process"})
    misses = fields.Integer(metadata={"description": "reads that found nothing (or an expired entry)"})


class CacheDeleteArgsSchema(Schema):
    prefix = fields.String(required=True, validate=validate.Length(min=1, max=500),
                           metadata={"description": "delete every key starting with this, e.g. asl:llm:"})


class CacheDeleteResultSchema(Schema):
    prefix = fields.String()
    deleted = fields.Integer()
