"""Resolve the one database URL that drives everything, and the broker / result URLs derived from it."""

from __future__ import annotations

from sqlalchemy.engine import make_url


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgres://`` / ``postgresql://`` URLs."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError("litscreen needs PostgreSQL: DATABASE_URL must be a postgresql:// URL")
    return parsed.render_as_string(hide_password=False)


def resolve_database_url(configured: str | None, instance_dir: str | None = None) -> str:
    """``configured`` normalised, or the embedded PostgreSQL's URL when it is empty."""
    if configured:
        return normalise_database_url(configured)
    from pathlib import Path

    from app.db.embedded import embedded_database_url

    return embedded_database_url(Path(instance_dir) if instance_dir else None)


def redact(url: str) -> str:
    """The URL with its password hidden, for logs."""
    try:
        return make_url(url.split("+", 1)[1] if url.startswith(("sqla+", "db+", "litpg+")) else url).render_as_string(
            hide_password=True
        )
    except Exception:  # noqa: BLE001 - never let a log line leak a secret because parsing failed
        return "<unparseable url>"
