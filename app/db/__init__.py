"""The database: engine and scoped session (:mod:`.session`), the one URL (:mod:`.url`), the embedded
PostgreSQL used when no URL is configured (:mod:`.embedded`) and programmatic Alembic (:mod:`.migrate`)."""
