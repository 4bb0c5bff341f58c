"""The database: engine and scoped session (:mod:`.session`), the one URL (:mod:`.url`), the embedded
PostgreSQL used when no URL is configured (:mod:`.embedded`), programmatic Alembic (:mod:`.migrate`) and how
every connection is opened: pooler mode, direct URL, names (:mod:`.connections`)."""
