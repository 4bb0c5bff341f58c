"""Attaching full texts to a project's records: one PDF for one record, or a ZIP of PDFs named by record.

A ZIP entry's name (without folders and ``.pdf``) names its record by literature id, DOI or PMID (see
``match_name``). Every file that cannot be used is a per-file failure in the answer — a non-PDF, an encrypted,
corrupt or text-less PDF, an entry of a ZIP bomb — never an error of the whole request. The rows of every usable
file are written in one transaction at the end.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.cache import Cache
from app.config import Settings
from app.models import Fulltext, Literature, Project
from app.services.fulltext.pdf_text import PdfLimits, PdfRejected, PdfText, looks_like_pdf, pdf_cache_ttl, pdf_text

logger = logging.getLogger(__name__)

DEFAULT_MAX_ZIP_ENTRIES = 500
DEFAULT_MAX_ZIP_RATIO = 100.0
DEFAULT_MAX_ZIP_UNCOMPRESSED_BYTES = 1024 * 1024 * 1024
_READ_CHUNK = 1024 * 1024
_PMID = re.compile(r"^(?:pmid)[\s_:\-]*(\d{1,12})$", re.IGNORECASE)
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)


class AttachRejected(ValueError):
    """The request itself is unusable (no file, unknown record): a 4xx naming ``field``."""

    def __init__(self, status: int, field_name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class ZipLimits:
    """Defences against ZIP bombs: entry count, compression ratio, total uncompressed size (declared and actual)."""

    max_entries: int = DEFAULT_MAX_ZIP_ENTRIES
    max_ratio: float = DEFAULT_MAX_ZIP_RATIO
    max_uncompressed: int = DEFAULT_MAX_ZIP_UNCOMPRESSED_BYTES

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Settings | None) -> ZipLimits:
        """The limits of ``config`` (``FULLTEXT_MAX_ZIP_ENTRIES``, ``…_RATIO``, ``…_UNCOMPRESSED_BYTES``)."""
        settings = Settings.of(config).fulltext
        return cls(settings.max_zip_entries, settings.max_zip_ratio, settings.max_zip_uncompressed)


@dataclass
class AttachSummary:
    """What an upload did: records that got a full text, names that matched no record, files that failed."""

    attached: int = 0
    unmatched: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    literature_ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The API answer ``{attached, unmatched, failed, literature_ids}``."""
        return {"attached": self.attached, "unmatched": self.unmatched, "failed": self.failed,
                "literature_ids": self.literature_ids}


def _name_keys(name: str) -> list[str]:
    """Normalised candidate keys of a file name: the stem, URL-decoded, with DOI-safe substitutes undone."""
    stem = PurePosixPath(name.replace("\\", "/")).name
    if stem.lower().endswith(".pdf"):
        stem = stem[:-4]
    stem = _DOI_PREFIX.sub("", unquote(stem).strip()).lower()
    keys = [stem]
    for old, new in (("_", "/"), ("+", "/"), (" ", "/")):
        if old in stem:
            keys.append(stem.replace(old, new, 1))
            keys.append(stem.replace(old, new))
    return list(dict.fromkeys(keys))


def _doi_keys(doi: str) -> set[str]:
    return {_DOI_PREFIX.sub("", doi.strip()).lower()}


class RecordMatcher:
    """Finds the record a file name stands for: a literature id of the project, else a PMID, else a DOI."""

    def __init__(self, session: Session, project: Project) -> None:
        rows = session.execute(select(Literature.id, Literature.doi, Literature.pmid)
                               .where(Literature.project_id == project.id)).all()
        self.ids = {row.id for row in rows}
        self.by_pmid = {str(row.pmid).strip(): row.id for row in rows if row.pmid}
        self.by_doi: dict[str, int] = {}
        for row in rows:
            for key in _doi_keys(row.doi or ""):
                if key:
                    self.by_doi[key] = row.id

    def match(self, name: str) -> int | None:
        """The literature id ``name`` stands for, or None."""
        for key in _name_keys(name):
            pmid = _PMID.match(key)
            if pmid:
                return self.by_pmid.get(pmid.group(1))
            if key.isdigit():
                if int(key) in self.ids:
                    return int(key)
                if key in self.by_pmid:
                    return self.by_pmid[key]
            if key in self.by_doi:
                return self.by_doi[key]
        return None


class FulltextAttacher:
    """Collects the usable PDFs of one upload and writes them in one transaction (``commit``)."""

    def __init__(self, session: Session, project: Project, cache: Cache | None,
                 config: Mapping[str, Any] | Settings | None) -> None:
        self.session = session
        self.project = project
        self.cache = cache
        self.limits = PdfLimits.from_config(config)
        self.zip_limits = ZipLimits.from_config(config)
        self.cache_ttl = pdf_cache_ttl(config)
        self.summary = AttachSummary()
        self._rows: dict[int, dict[str, Any]] = {}

    # -- one PDF -------------------------------------------------------------------------------------------
    def add_pdf(self, name: str, data: bytes, literature_id: int) -> None:
        """Extract ``data`` for record ``literature_id``; a failure is recorded against ``name``."""
        try:
            text = pdf_text(data, self.cache, self.limits, self.cache_ttl)
        except PdfRejected as exc:
            self._fail(name, exc.reason)
            return
        self._rows[literature_id] = self._row(name, literature_id, text)
        if not text.text_available:
            self._fail(name, "no text layer (a scanned PDF?): attach a PDF with text, or run OCR first")

    def _row(self, name: str, literature_id: int, text: PdfText) -> dict[str, Any]:
        return {"literature_id": literature_id, "project_id": self.project.id, "sha256": text.sha256,
                "filename": PurePosixPath(name.replace("\\", "/")).name[:500], "size_bytes": text.size_bytes,
                "pages": text.pages, "chars": text.chars, "page_texts": text.page_texts,
                "text_available": text.text_available, "extractor": text.extractor}

    def _fail(self, name: str, reason: str) -> None:
        logger.info("full text %r not attached: %s", name, reason)
        self.summary.failed.append({"name": name, "reason": reason})

    # -- a ZIP ---------------------------------------------------------------------------------------------
    def add_zip(self, name: str, data: bytes) -> None:
        """Every PDF entry of a ZIP, matched to records by name; bomb-shaped archives and entries fail."""
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            self._fail(name, f"not a readable ZIP archive ({exc})")
            return
        with archive:
            entries = [info for info in archive.infolist() if not info.is_dir()]
            if len(entries) > self.zip_limits.max_entries:
                self._fail(name, f"{len(entries)} entries, more than the limit of {self.zip_limits.max_entries} "
                                 "(FULLTEXT_MAX_ZIP_ENTRIES)")
                return
            declared = sum(info.file_size for info in entries)
            if declared > self.zip_limits.max_uncompressed:
                self._fail(name, f"declares {declared} bytes uncompressed, more than the limit of "
                                 f"{self.zip_limits.max_uncompressed} (FULLTEXT_MAX_ZIP_UNCOMPRESSED_BYTES)")
                return
            budget = self.zip_limits.max_uncompressed
            matcher = RecordMatcher(self.session, self.project)
            for info in entries:
                entry_name = info.filename
                base = PurePosixPath(entry_name).name
                if base.startswith(".") or entry_name.startswith("__MACOSX/"):
                    continue  # archive-tool metadata, not a document
                problem = self._entry_problem(info)
                if problem:
                    self._fail(entry_name, problem)
                    continue
                literature_id = matcher.match(entry_name)
                if literature_id is None:
                    self.summary.unmatched.append(entry_name)
                    continue
                try:
                    content = self._read_entry(archive, info, min(budget, self.limits.max_bytes))
                except PdfRejected as exc:
                    self._fail(entry_name, exc.reason)
                    continue
                budget -= len(content)
                if not looks_like_pdf(content):
                    self._fail(entry_name, "not a PDF (no %PDF- header)")
                    continue
                self.add_pdf(entry_name, content, literature_id)

    def _entry_problem(self, info: zipfile.ZipInfo) -> str | None:
        if info.flag_bits & 0x1:
            return "encrypted ZIP entry"
        if info.file_size > self.limits.max_bytes:
            return f"declares {info.file_size} bytes, more than the limit of {self.limits.max_bytes} " \
                   "(FULLTEXT_MAX_PDF_BYTES)"
        if info.compress_size and info.file_size / info.compress_size > self.zip_limits.max_ratio:
            return (f"compression ratio {info.file_size / info.compress_size:.0f}:1 is over the limit of "
                    f"{self.zip_limits.max_ratio:g}:1 (a ZIP bomb?)")
        return None

    def _read_entry(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
        """The entry's bytes, read in chunks and stopped past ``limit`` or the declared size (lying headers)."""
        out = bytearray()
        cap = min(limit, info.file_size)
        try:
            with archive.open(info) as stream:
                while True:
                    chunk = stream.read(_READ_CHUNK)
                    if not chunk:
                        break
                    out += chunk
                    if len(out) > cap:
                        raise PdfRejected(f"inflates past its declared size or the limit of {cap} bytes "
                                          "(a ZIP bomb?)")
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise PdfRejected(f"unreadable ZIP entry ({type(exc).__name__}: {exc})") from None
        return bytes(out)

    # -- write ---------------------------------------------------------------------------------------------
    def commit(self) -> AttachSummary:
        """Upsert one ``fulltexts`` row per record (replacing an earlier one) in one transaction."""
        if self._rows:
            statement = pg_insert(Fulltext.__table__).values(list(self._rows.values()))
            updated = {c: statement.excluded[c] for c in ("sha256", "filename", "size_bytes", "pages", "chars",
                                                          "page_texts", "text_available", "extractor")}
            self.session.execute(statement.on_conflict_do_update(index_elements=["literature_id"], set_=updated))
        self.session.commit()
        usable = sorted(i for i, row in self._rows.items() if row["text_available"])
        self.summary.attached = len(usable)
        self.summary.literature_ids = usable
        return self.summary


def is_zip(data: bytes) -> bool:
    """Whether ``data`` starts like a ZIP archive."""
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def attach_fulltexts(session: Session, project: Project, filename: str, data: bytes, literature_id: int | None,
                     cache: Cache | None, config: Mapping[str, Any] | Settings | None) -> AttachSummary:
    """Attach one PDF to ``literature_id``, or every PDF of a ZIP by name. AttachRejected for a bad request."""
    attacher = FulltextAttacher(session, project, cache, config)
    if is_zip(data):
        if literature_id is not None:
            raise AttachRejected(422, "literature_id", "A ZIP's PDFs are matched by their names; "
                                                       "send literature_id only with a single PDF.")
        attacher.add_zip(filename, data)
        return attacher.commit()
    if literature_id is None:
        raise AttachRejected(422, "literature_id", "Send literature_id with a single PDF (or upload a ZIP of "
                                                   "PDFs named by literature id, DOI or PMID).")
    owner = session.scalar(select(Literature.project_id).where(Literature.id == literature_id))
    if owner != project.id:
        raise AttachRejected(422, "literature_id", f"Record {literature_id} is not in project {project.id}.")
    attacher.add_pdf(filename, data, literature_id)
    return attacher.commit()


def fulltext_of(session: Session, literature_id: int) -> Fulltext | None:
    """The record's attached full text, if any."""
    return session.scalar(select(Fulltext).where(Fulltext.literature_id == literature_id))
