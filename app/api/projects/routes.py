"""Projects: /api/v1/asl/projects."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import func, select

from app.api.auth import current_user
from app.api.pagination import PAGINATE_ARGS
from app.api.projects.schemas import ProjectCreateSchema, ProjectSchema, ProjectUpdateSchema
from app.extensions import db
from app.models import Literature, Project
from app.services import projects as project_service

blp = Blueprint("projects", __name__, url_prefix="/api/v1/asl/projects", description="Screening projects")


def load_project(project_id: int) -> Project:
    """The current user's project (ProjectNotFound, a 404, also for another user's project)."""
    return project_service.get_project(db.session(), current_user(), project_id)


def with_counts(projects: list[Project]) -> list[Project]:
    """Attach ``literature_count`` to each project with one query."""
    ids = [p.id for p in projects]
    counts = dict(
        db.session().execute(
            select(Literature.project_id, func.count()).where(Literature.project_id.in_(ids))
            .group_by(Literature.project_id)
        ).all()
    ) if ids else {}
    for project in projects:
        project.literature_count = counts.get(project.id, 0)  # type: ignore[attr-defined]
    return projects


@blp.route("")
class Projects(MethodView):
    @blp.response(200, ProjectSchema(many=True))
    @blp.paginate(**PAGINATE_ARGS)
    def get(self, pagination_parameters):
        """List your projects."""
        items, total = project_service.list_projects(
            db.session(), current_user(), pagination_parameters.first_item, pagination_parameters.page_size
        )
        pagination_parameters.item_count = total
        return with_counts(items)

    @blp.arguments(ProjectCreateSchema)
    @blp.response(201, ProjectSchema)
    def post(self, data):
        """Create a project."""
        return with_counts([project_service.create_project(db.session(), current_user(), data)])[0]


@blp.route("/<int:project_id>")
class ProjectById(MethodView):
    @blp.response(200, ProjectSchema)
    def get(self, project_id: int):
        """Get a project."""
        return with_counts([load_project(project_id)])[0]

    @blp.arguments(ProjectUpdateSchema)
    @blp.response(200, ProjectSchema)
    def patch(self, data, project_id: int):
        """Update a project's name, PICOS or criteria."""
        project = load_project(project_id)
        return with_counts([project_service.update_project(db.session(), project, data)])[0]

    @blp.response(204)
    def delete(self, project_id: int):
        """Delete a project with its records, tasks and results."""
        project_service.delete_project(db.session(), load_project(project_id))
