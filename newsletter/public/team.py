"""The team page of a group practice (/team): each clinician, what they work with, and a contact link that
names them. A solo practice has no team page and no team link."""
from __future__ import annotations

from flask import abort, render_template
from sqlalchemy.exc import SQLAlchemyError

from newsletter.core.extensions import db
from newsletter.inquiries import routing
from newsletter.public.blueprint import bp


@bp.get("/team")
def team():
    if not routing.is_group():
        abort(404)
    return render_template("public/team.html", team=routing.team())


@bp.app_template_global()
def group_practice() -> bool:
    """Whether pages show the team link (base.html): also rendered when the database is down, so never fails."""
    try:
        return routing.is_group()
    except SQLAlchemyError:
        db.session.rollback()
        return False
