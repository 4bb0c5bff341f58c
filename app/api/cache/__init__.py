"""The cache API: /api/v1/cache (stats and delete by prefix)."""
