"""Bibliographic records of a project, deduplicated per project (``dedup_key`` is the primary key of the record;
imports also match on DOI, PMID and normalised title + year, see app/services/deduplication.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Literature(Base):
    __tablename__ = "literature"
    __table_args__ = (UniqueConstraint("project_id", "dedup_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str | None] = mapped_column(Text)
    authors: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    year: Mapped[int | None] = mapped_column(Integer)
    journal: Mapped[str | None] = mapped_column(Text)
    doi: Mapped[str | None] = mapped_column(String(255))
    pmid: Mapped[str | None] = mapped_column(String(32))
    keywords: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    source_format: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[str | None] = mapped_column(String(255))
    label: Mapped[str | None] = mapped_column(String(20))
    dedup_key: Mapped[str] = mapped_column(String(600))
    # journal_article, conference_paper, book_chapter, … (app/importers/record_types.py); None: not stated
    record_type: Mapped[str | None] = mapped_column(String(40))
    # every database the record was found in, the first import's first (Scopus, PubMed, the user's label …)
    source_databases: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    import_batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("import_batches.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
