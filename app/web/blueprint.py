"""The workspace's one blueprint, mounted at /ui/ (its views live in auth, projects, runs, review, reports)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("web", __name__, url_prefix="/ui", template_folder="templates", static_folder="static",
               static_url_path="/static")
