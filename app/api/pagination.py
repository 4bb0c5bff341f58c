"""Pagination arguments shared by list endpoints (flask-smorest's page / page_size + X-Pagination)."""

from __future__ import annotations

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
PAGINATE_ARGS = {"page": 1, "page_size": DEFAULT_PAGE_SIZE, "max_page_size": MAX_PAGE_SIZE}

