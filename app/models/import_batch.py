"""One row per import (a file upload or a JSON record list): what it identified per source database and how
many duplicates were removed, for PRISMA 2020's identification box; and the human decisions on possible
duplicates (merged or dismissed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class ImportBatch(Base):
    """An import and its identification counts (``by_database``: {database: {identified, duplicates, imported}})."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str | None] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(20))
    encoding: Mapped[str | None] = mapped_column(String(20))
    source_label: Mapped[str | None] = mapped_column(String(200))
    identified: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    duplicates_in_file: Mapped[int] = mapped_column(Integer, default=0)
    duplicates_existing: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    by_database: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    warnings: Mapped[list[str]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DuplicateDecision(Base):
    """A human's answer on possible duplicates: ``merged`` (``kept_id`` kept, the others removed) or
    ``dismissed`` (the records are different; never listed together again)."""

    __tablename__ = "duplicate_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(20))
    kept_id: Mapped[int | None] = mapped_column(BigInteger)
    literature_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
