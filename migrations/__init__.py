"""Alembic migrations: they own every table, the broker's and the result backend's included."""
