"""Text of a PDF, page by page, with pypdf (BSD); cached by the PDF's SHA-256 under ``asl:pdf:``.

A PDF that is not one, is encrypted with a password, is corrupt, is over the size or page limit, or has no text
layer (a scan) raises ``PdfRejected`` with a reason a user can act on. Nothing here writes to the database.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pypdf
from pypdf.errors import PdfReadError

from app.cache import Cache
from app.config import Settings

logger = logging.getLogger(__name__)

PDF_CACHE_PREFIX = "asl:pdf:"
EXTRACTOR = f"pypdf {pypdf.__version__}"
DEFAULT_MAX_PDF_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_PAGES = 300
DEFAULT_PDF_CACHE_TTL_SECONDS = 30 * 24 * 3600
# fewer extracted characters than this per page on average: no usable text layer (a scanned document)
MIN_CHARS_PER_PAGE = 20

# pypdf logs a warning per font it cannot fully decode (e.g. CFF fonts without fontTools); the text is still fine
logging.getLogger("pypdf").setLevel(logging.ERROR)


class PdfRejected(ValueError):
    """The file cannot be used as a full text; ``reason`` says why (shown to the user per file)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PdfLimits:
    """Size and page limits for one PDF (``FULLTEXT_MAX_PDF_BYTES``, ``FULLTEXT_MAX_PAGES``)."""

    max_bytes: int = DEFAULT_MAX_PDF_BYTES
    max_pages: int = DEFAULT_MAX_PAGES

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Settings | None) -> PdfLimits:
        """The limits of ``config`` (``FULLTEXT_MAX_PDF_BYTES``, ``FULLTEXT_MAX_PAGES``)."""
        settings = Settings.of(config).fulltext
        return cls(settings.max_pdf_bytes, settings.max_pages)


@dataclass
class PdfText:
    """A PDF's extracted text."""

    sha256: str
    size_bytes: int
    page_texts: list[str]
    text_available: bool
    extractor: str = EXTRACTOR

    @property
    def pages(self) -> int:
        """Number of pages."""
        return len(self.page_texts)

    @property
    def chars(self) -> int:
        """Characters of text in all pages."""
        return sum(len(t) for t in self.page_texts)

    def to_cache(self) -> dict[str, Any]:
        """The JSON stored under ``asl:pdf:<sha256>``."""
        return {"sha256": self.sha256, "size_bytes": self.size_bytes, "page_texts": self.page_texts,
                "text_available": self.text_available, "extractor": self.extractor}


def sha256_of(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def looks_like_pdf(data: bytes) -> bool:
    """Whether ``data`` starts with the PDF header (within the first KiB, as readers allow)."""
    return b"%PDF-" in data[:1024]


def extract_pdf_text(data: bytes, limits: PdfLimits | None = None) -> PdfText:
    """Every page's text; PdfRejected when the file is unusable (not a PDF, encrypted, corrupt, over a limit)."""
    limits = limits or PdfLimits()
    if len(data) > limits.max_bytes:
        raise PdfRejected(f"larger than the limit of {limits.max_bytes} bytes (FULLTEXT_MAX_PDF_BYTES)")
    if not looks_like_pdf(data):
        raise PdfRejected("not a PDF (no %PDF- header)")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise PdfRejected("encrypted: the PDF needs a password to be read")
        page_count = len(reader.pages)
        if page_count > limits.max_pages:
            raise PdfRejected(f"{page_count} pages, more than the limit of {limits.max_pages} (FULLTEXT_MAX_PAGES)")
        if page_count == 0:
            raise PdfRejected("the PDF has no pages")
        texts = [_clean(page.extract_text() or "") for page in reader.pages]
    except PdfRejected:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError,
            AssertionError, OSError, NotImplementedError) as exc:
        # pypdf raises assorted exceptions on damaged files; every one of them means "cannot read this PDF"
        if isinstance(exc, (PdfReadError,)) and "decrypt" in str(exc).lower():
            raise PdfRejected("encrypted: the PDF needs a password to be read") from None
        raise PdfRejected(f"corrupt or unreadable PDF ({type(exc).__name__}: {str(exc)[:200]})") from None
    available = sum(len(t.strip()) for t in texts) >= MIN_CHARS_PER_PAGE * page_count
    return PdfText(sha256_of(data), len(data), texts, available)


def _clean(text: str) -> str:
    """Page text without NUL bytes (PostgreSQL's JSONB refuses them) and trailing spaces."""
    return text.replace("\x00", "").rstrip()


def pdf_text(data: bytes, cache: Cache | None, limits: PdfLimits | None = None,
             ttl: float | None = DEFAULT_PDF_CACHE_TTL_SECONDS) -> PdfText:
    """``extract_pdf_text`` through the ``asl:pdf:<sha256>`` cache (a file is parsed once, whoever sends it)."""
    limits = limits or PdfLimits()
    if len(data) > limits.max_bytes:
        raise PdfRejected(f"larger than the limit of {limits.max_bytes} bytes (FULLTEXT_MAX_PDF_BYTES)")
    digest = sha256_of(data)
    key = PDF_CACHE_PREFIX + digest
    if cache is not None:
        hit = cache.get(key)
        if isinstance(hit, dict) and hit.get("extractor") == EXTRACTOR and isinstance(hit.get("page_texts"), list):
            if len(hit["page_texts"]) > limits.max_pages:
                raise PdfRejected(f"{len(hit['page_texts'])} pages, more than the limit of {limits.max_pages} "
                                  "(FULLTEXT_MAX_PAGES)")
            return PdfText(digest, int(hit.get("size_bytes") or len(data)), list(hit["page_texts"]),
                           bool(hit.get("text_available")), EXTRACTOR)
    text = extract_pdf_text(data, limits)
    if cache is not None:
        cache.set(key, text.to_cache(), ttl)
    return text


def pdf_cache_ttl(config: Mapping[str, Any] | Settings | None) -> float | None:
    """``PDF_CACHE_TTL_SECONDS`` (default 30 days; 0 = no expiry)."""
    ttl = Settings.of(config).fulltext.pdf_cache_ttl
    return ttl if ttl > 0 else None
