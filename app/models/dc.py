"""Clinical-record datasets: an uploaded CSV/XLSX file's rows, kept exactly as read, and its health report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class DcDataset(Base):
    """One uploaded file (one sheet of it), owned by the uploading user."""

    __tablename__ = "dc_datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    file_format: Mapped[str] = mapped_column(String(10))          # csv | xlsx
    sheet: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)   # of the file's bytes
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[list[str]] = mapped_column(JSONB, default=list)
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    health: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DcRecord(Base):
    """One data row of a dataset, as read (cell values by header); its id is the extraction's item id."""

    __tablename__ = "dc_records"
    __table_args__ = (UniqueConstraint("dataset_id", "row_index"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dc_datasets.id", ondelete="CASCADE"), index=True)
    row_index: Mapped[int] = mapped_column(Integer)               # 0-based, in file order
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
