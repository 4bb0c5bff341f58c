"""HTTP client for a running litscreen service: what the terminal commands (and the demo) call.

Every method maps to one contract endpoint (see the README's API table). Errors become :class:`ApiError` with
the server's message and field errors, never a traceback and never the token: the token lives only in the
``Authorization`` header of the underlying ``httpx.Client`` and is not part of any message built here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "http://127.0.0.1:5000"
API_PREFIX = "/api/v1"


class ApiError(Exception):
    """A request failed: unreachable service, or an HTTP error answer (``status`` is then its code)."""

    def __init__(self, message: str, status: int | None = None, errors: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors = errors or {}

    def __str__(self) -> str:
        text = self.message if self.status is None else f"HTTP {self.status}: {self.message}"
        for field, problems in _flatten_errors(self.errors):
            if problems and problems in self.message:  # said once: not again under its field
                continue
            text += f"\n  {field}: {problems}"
        return text


def _flatten_errors(errors: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(field path, problem text) pairs from flask-smorest's nested ``errors`` document."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (dict, list)) and not _is_message_list(value):
                yield from _flatten_errors(value, path)
            else:
                yield path, "; ".join(value) if isinstance(value, list) else str(value)
    elif isinstance(errors, list):
        yield prefix or "error", "; ".join(str(item) for item in errors)


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)




class LitscreenClient:
    """A thin, typed wrapper over the litscreen REST API."""

    def __init__(self, api_url: str, token: str | None, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Accept": "application/json", "User-Agent": "litscreen-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(base_url=self.api_url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> LitscreenClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiError(f"the litscreen API at {self.api_url} did not answer in time ({method} {path})") from None
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the litscreen API at {self.api_url}: {type(exc).__name__}: "
                           f"{_safe_reason(exc)} (is the service running? set LITSCREEN_API_URL or --api-url)"
                           ) from None
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"{method} {path} answered {response.status_code} with a body that is not JSON",
                           response.status_code) from None

    def _pages(self, path: str, params: dict[str, Any] | None = None, page_size: int = 500) -> Iterator[dict]:
        """Every item of a paginated list endpoint (``page`` / ``page_size``, ``X-Pagination``)."""
        page = 1
        while True:
            query = dict(params or {}, page=page, page_size=page_size)
            response = self._request("GET", path, params=query)
            items = response.json()
            if isinstance(items, dict):  # tolerate an {"items": [...]} envelope
                items = items.get("items", [])
            yield from items
            pagination = _pagination(response)
            if pagination is None:  # not a paginated endpoint: that was everything
                return
            last_page = pagination.get("last_page")
            if not items or last_page is None or page >= int(last_page):
                return
            page += 1

    # -- projects and records ------------------------------------------------------------------------------

    def create_project(self, name: str, picos: dict[str, str], inclusion_criteria: str | None = None,
                       exclusion_criteria: str | None = None) -> dict:
        """``POST /asl/projects``."""
        body: dict[str, Any] = {"name": name, "picos": picos}
        if inclusion_criteria:
            body["inclusion_criteria"] = inclusion_criteria
        if exclusion_criteria:
            body["exclusion_criteria"] = exclusion_criteria
        return self._json("POST", f"{API_PREFIX}/asl/projects", json=body)

    def import_records(self, project_id: int, records: list[dict[str, Any]]) -> dict:
        """``POST /asl/projects/{id}/literatures`` with JSON records; answers ``{imported, duplicates, skipped}``."""
        return self._json("POST", f"{API_PREFIX}/asl/projects/{project_id}/literatures", json={"records": records})

    def import_file(self, project_id: int, path: Path, source: str | None = None) -> dict:
        """``POST /asl/projects/{id}/literatures`` with the file as multipart ``file`` (format detected) and the
        optional ``source`` label (the database searched); answers ``{imported, duplicates, skipped, format,
        encoding, warnings, source_databases}``."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ApiError(f"cannot read {path}: {exc.strerror or exc}") from None
        files = {"file": (Path(path).name, data, "application/octet-stream")}
        form = {"source": source} if source else None
        return self._json("POST", f"{API_PREFIX}/asl/projects/{project_id}/literatures", files=files, data=form)

    def projects(self) -> Iterator[dict]:
        """``GET /asl/projects``: every project of the token's user."""
        return self._pages(f"{API_PREFIX}/asl/projects")

    def attach_fulltexts(self, project_id: int, name: str, data: bytes, literature_id: int | None = None) -> dict:
        """``POST /asl/projects/{id}/fulltexts``: one PDF (with ``literature_id``) or a ZIP of PDFs named by record."""
        form = {"literature_id": str(literature_id)} if literature_id is not None else None
        return self._json("POST", f"{API_PREFIX}/asl/projects/{project_id}/fulltexts",
                          files={"file": (name, data, "application/octet-stream")}, data=form)

    def literatures(self, project_id: int) -> Iterator[dict]:
        """Every record of a project."""
        return self._pages(f"{API_PREFIX}/asl/projects/{project_id}/literatures")

    # -- screening -----------------------------------------------------------------------------------------

    def start_screening(self, project_id: int, batch_size: int | None = None,
                        task_type: str = "title_abstract", literature_ids: list[int] | None = None,
                        budget_usd: float | None = None) -> dict:
        """``POST /asl/projects/{id}/screening`` (202): the new task."""
        body: dict[str, Any] = {"task_type": task_type}
        if batch_size:
            body["batch_size"] = batch_size
        if budget_usd is not None:
            body["budget_usd"] = budget_usd
        if literature_ids is not None:
            body["literature_ids"] = literature_ids
        return self._json("POST", f"{API_PREFIX}/asl/projects/{project_id}/screening", json=body)

    def task(self, task_id: int) -> dict:
        """``GET /asl/tasks/{id}``."""
        return self._json("GET", f"{API_PREFIX}/asl/tasks/{task_id}")

    def batches(self, task_id: int) -> list[dict]:
        """``GET /asl/tasks/{id}/batches``: every batch row with its lease."""
        return list(self._pages(f"{API_PREFIX}/asl/tasks/{task_id}/batches"))

    def results(self, task_id: int, **filters: Any) -> Iterator[dict]:
        """``GET /asl/tasks/{id}/results`` (filters: decision, conflict, review), every page."""
        return self._pages(f"{API_PREFIX}/asl/tasks/{task_id}/results",
                           {k: v for k, v in filters.items() if v is not None})

    def resume(self, task_id: int, budget_usd: float) -> dict:
        """``POST /asl/tasks/{id}/resume`` (202): a paused task with a raised budget, continuing."""
        return self._json("POST", f"{API_PREFIX}/asl/tasks/{task_id}/resume", json={"budget_usd": budget_usd})

    def start_calibration(self, project_id: int, sample_size: int | None = None) -> dict:
        """``POST /asl/projects/{id}/calibration`` (202): a calibration run on labelled records."""
        body = {} if sample_size is None else {"sample_size": sample_size}
        return self._json("POST", f"{API_PREFIX}/asl/projects/{project_id}/calibration", json=body)

    def calibration(self, task_id: int) -> dict:
        """``GET /asl/tasks/{id}/calibration``: agreement and the PICOS elements behind disagreements."""
        return self._json("GET", f"{API_PREFIX}/asl/tasks/{task_id}/calibration")

    def drift(self, task_id: int) -> dict:
        """``GET /asl/tasks/{id}/drift``: test–retest agreement of the run's drift check."""
        return self._json("GET", f"{API_PREFIX}/asl/tasks/{task_id}/drift")

    def cancel(self, task_id: int) -> dict:
        """``POST /asl/tasks/{id}/cancel``."""
        return self._json("POST", f"{API_PREFIX}/asl/tasks/{task_id}/cancel")

    def export(self, task_id: int, fmt: str = "csv") -> bytes:
        """``GET /asl/tasks/{id}/export?format=csv|ris|xlsx``: the file's bytes."""
        return self._request("GET", f"{API_PREFIX}/asl/tasks/{task_id}/export", params={"format": fmt}).content

    # -- reports -------------------------------------------------------------------------------------------

    def agreement(self, task_id: int) -> dict:
        """``GET /asl/tasks/{id}/agreement``: recall, specificity, work saved, kappa, AC1 with 95 % intervals."""
        return self._json("GET", f"{API_PREFIX}/asl/tasks/{task_id}/agreement")

    def audit_sample(self, task_id: int, size: int) -> dict:
        """``POST /asl/tasks/{id}/audit-sample``: draw machine-excluded results for human review."""
        return self._json("POST", f"{API_PREFIX}/asl/tasks/{task_id}/audit-sample", json={"size": size})

    def audit(self, task_id: int) -> dict:
        """``GET /asl/tasks/{id}/audit``: missed includes and the upper 95 % bound on the miss rate."""
        return self._json("GET", f"{API_PREFIX}/asl/tasks/{task_id}/audit")

    def review(self, result_id: int, decision: str, note: str | None = None) -> dict:
        """``PATCH /asl/results/{id}``: a human decision."""
        return self._json("PATCH", f"{API_PREFIX}/asl/results/{result_id}",
                          json={"review_decision": decision, **({"note": note} if note else {})})

    def methods(self, task_id: int) -> dict:
        """``GET /asl/tasks/{id}/methods``: the methods paragraph and the facts behind it."""
        return self._json("GET", f"{API_PREFIX}/asl/tasks/{task_id}/methods")

    def prisma(self, project_id: int) -> dict:
        """``GET /asl/projects/{id}/prisma``: PRISMA 2020 counts."""
        return self._json("GET", f"{API_PREFIX}/asl/projects/{project_id}/prisma")

    def prisma_svg(self, project_id: int) -> bytes:
        """``GET /asl/projects/{id}/prisma?format=svg``: the PRISMA 2020 flow diagram."""
        return self._request("GET", f"{API_PREFIX}/asl/projects/{project_id}/prisma",
                             params={"format": "svg"}).content

    def cache_stats(self) -> dict:
        """``GET /cache/stats``."""
        return self._json("GET", f"{API_PREFIX}/cache/stats")


def _pagination(response: httpx.Response) -> dict | None:
    import json

    header = response.headers.get("X-Pagination")
    if not header:
        return None
    try:
        return json.loads(header)
    except ValueError:
        return None


def _error_from(response: httpx.Response) -> ApiError:
    """An ApiError from the contract's error document (or from the status line when the body is not JSON)."""
    message = response.reason_phrase or "error"
    errors: dict | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("status") or message)
        errors = body.get("errors") if isinstance(body.get("errors"), dict) else None
    if response.status_code == 401:
        message += " (check LITSCREEN_TOKEN or --token; create one with `litscreen tokens create NAME`)"
    return ApiError(message, response.status_code, errors)


def _safe_reason(exc: httpx.HTTPError) -> str:
    """The exception text, which for transport errors names the address but never carries headers."""
    text = str(exc) or exc.__class__.__name__
    return text.splitlines()[0][:200]
