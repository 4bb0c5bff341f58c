"""Full texts attached to records: one extracted PDF per record (text per page), for full-text screening."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Fulltext(Base):
    __tablename__ = "fulltexts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # one full text per record: attaching again replaces it
    literature_id: Mapped[int] = mapped_column(ForeignKey("literature.id", ondelete="CASCADE"), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str | None] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    chars: Mapped[int] = mapped_column(Integer, default=0)
    # the text of each page, in page order (page N is page_texts[N - 1])
    page_texts: Mapped[list[str]] = mapped_column(JSONB, default=list)
    text_available: Mapped[bool] = mapped_column(Boolean, default=False)
    extractor: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
