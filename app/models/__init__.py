"""All models, imported so ``Base.metadata`` knows every table (Alembic's target)."""

from app.models import broker  # noqa: F401
from app.models.base import Base
from app.models.cache import CacheEntry
from app.models.dc import DcDataset, DcRecord
from app.models.fulltext import Fulltext
from app.models.import_batch import DuplicateDecision, ImportBatch
from app.models.literature import Literature
from app.models.llm_limits import LlmInflight, LlmRateSlot
from app.models.operations import MaintenanceRun, MetricCounter
from app.models.project import Project
from app.models.screening import ScreeningBatch, ScreeningResult, ScreeningTask
from app.models.user import ApiToken, User

__all__ = [
    "ApiToken",
    "Base",
    "CacheEntry",
    "Fulltext",
    "DcDataset",
    "DcRecord",
    "DuplicateDecision",
    "ImportBatch",
    "Literature",
    "LlmInflight",
    "LlmRateSlot",
    "MaintenanceRun",
    "MetricCounter",
    "Project",
    "ScreeningBatch",
    "ScreeningResult",
    "ScreeningTask",
    "User",
]
