"""Projects: create, list, read, update and delete, always scoped to their owner."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Project, User


class ProjectNotFound(LookupError):
    """No such project for this user (another user's project is 'not found' too)."""


def get_project(session: Session, user: User, project_id: int) -> Project:
    """The user's project ``project_id``, or ProjectNotFound."""
    project = session.get(Project, project_id)
    if project is None or project.owner_id != user.id:
        raise ProjectNotFound(project_id)
    return project


def list_projects(session: Session, user: User, offset: int, limit: int) -> tuple[list[Project], int]:
    """A page of the user's projects, newest first, and the total count."""
    query = select(Project).where(Project.owner_id == user.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(Project.id.desc()).offset(offset).limit(limit)))
    return items, total


def create_project(session: Session, user: User, data: dict[str, Any]) -> Project:
    """Create and commit a project owned by ``user``."""
    project = Project(owner_id=user.id, **data)
    session.add(project)
    session.commit()
    return project


def update_project(session: Session, project: Project, data: dict[str, Any]) -> Project:
    """Apply the given fields and commit."""
    for name, value in data.items():
        setattr(project, name, value)
    session.commit()
    return project


def delete_project(session: Session, project: Project) -> None:
    """Delete the project and everything under it (cascades in the database)."""
    session.delete(project)
    session.commit()
