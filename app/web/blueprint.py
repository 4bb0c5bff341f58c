"""The workspace's one blueprint, mounted at /ui/ (its views live in auth, projects, runs, review, reports)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("web", __name__, url_prefix="/ui", template_folder="templates", static_folder="static",
               static_url_path="/static")

KIND_NAMES = {"title_abstract": "title and abstract screening", "fulltext": "full-text screening",
              "dc_extraction": "clinical-record extraction"}


@bp.context_processor
def workspace_names() -> dict[str, object]:
    """Names the templates show for task kinds."""
    return {"kind_names": KIND_NAMES}
