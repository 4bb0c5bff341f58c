"""Shared state of the fleet-wide provider limits: the next free request slot and the calls in flight."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class LlmRateSlot(Base):
    """The next request start a provider allows, for every worker process of every host."""

    __tablename__ = "llm_rate_slots"

    limiter: Mapped[str] = mapped_column(String(300), primary_key=True)
    next_slot: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LlmInflight(Base):
    """One row per request in flight at a provider; a holder that died stops counting at ``expires_at``."""

    __tablename__ = "llm_inflight"

    holder: Mapped[str] = mapped_column(String(36), primary_key=True)
    limiter: Mapped[str] = mapped_column(String(300), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
