"""REST API: one blueprint per resource, registered on the flask-smorest Api."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def register_blueprints(app: Flask, api: Api) -> None:
    """Register authentication and every resource blueprint."""
    from app.api.auth import register_auth
    from app.api.cache.routes import blp as cache_blp
    from app.api.duplicates.routes import blp as duplicates_blp
    from app.api.fulltexts.routes import blp as fulltexts_blp
    from app.api.health.routes import blp as health_blp
    from app.api.literatures.routes import blp as literatures_blp
    from app.api.projects.routes import blp as projects_blp
    from app.api.reports.routes import blp as reports_blp
    from app.api.screening.routes import blp as screening_blp

    register_auth(app)
    api.register_blueprint(health_blp)
    api.register_blueprint(projects_blp)
    api.register_blueprint(literatures_blp)
    api.register_blueprint(duplicates_blp)
    api.register_blueprint(screening_blp)
    api.register_blueprint(reports_blp)
    api.register_blueprint(fulltexts_blp)
    api.register_blueprint(cache_blp)
