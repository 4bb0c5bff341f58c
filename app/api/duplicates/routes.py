"""/api/v1/asl/projects/{id}/possible-duplicates (list, merge, dismiss) and /imports (identification counts)."""

from __future__ import annotations

import logging
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from app.api.auth import current_user
from app.api.duplicates.schemas import (
    DismissResultSchema,
    DismissSchema,
    IdentificationSchema,
    MergeResultSchema,
    MergeSchema,
    PossibleDuplicateSchema,
)
from app.api.pagination import PAGINATE_ARGS
from app.api.projects.routes import load_project
from app.extensions import db
from app.services import possible_duplicates as duplicates_service
from app.services.identification import identification_counts

logger = logging.getLogger(__name__)

blp = Blueprint("duplicates", __name__, url_prefix="/api/v1/asl/projects",
                description="Possible duplicates of a project and its import history")


@blp.route("/<int:project_id>/possible-duplicates")
class PossibleDuplicates(MethodView):
    @blp.response(200, PossibleDuplicateSchema(many=True))
    @blp.paginate(**PAGINATE_ARGS)
    def get(self, pagination_parameters, project_id: int):
        """List pairs of records that are probably one study, for a human to merge or dismiss."""
        project = load_project(project_id)
        pairs = duplicates_service.find_possible_duplicates(db.session(), project)
        pagination_parameters.item_count = len(pairs)
        first = pagination_parameters.first_item
        return pairs[first:first + pagination_parameters.page_size]


@blp.route("/<int:project_id>/possible-duplicates/merge")
class MergeDuplicates(MethodView):
    @blp.arguments(MergeSchema)
    @blp.response(200, MergeResultSchema)
    def post(self, body: dict[str, Any], project_id: int):
        """Merge records into one (keep_id), completing it from the others, which are removed."""
        project = load_project(project_id)
        kept, warnings = duplicates_service.merge_duplicates(
            db.session(), project, current_user(), body["keep_id"], body["merge_ids"]
        )
        return {"record": kept, "merged_ids": body["merge_ids"], "warnings": warnings}


@blp.route("/<int:project_id>/possible-duplicates/dismiss")
class DismissDuplicates(MethodView):
    @blp.arguments(DismissSchema)
    @blp.response(200, DismissResultSchema)
    def post(self, body: dict[str, Any], project_id: int):
        """Mark records as different studies: they are not listed as possible duplicates again."""
        project = load_project(project_id)
        duplicates_service.dismiss_duplicates(db.session(), project, current_user(), body["literature_ids"])
        return {"dismissed": sorted(set(body["literature_ids"]))}


@blp.route("/<int:project_id>/imports")
class Imports(MethodView):
    @blp.response(200, IdentificationSchema)
    def get(self, project_id: int):
        """Records identified per source database, duplicates removed, and every import (PRISMA identification)."""
        return identification_counts(db.session(), load_project(project_id))
