"""The team page of a group practice (/team): each clinician, what they work with, and a contact link that
names them. A solo practice has no team page and no team link."""
from __future__ import annotations

from flask import Response, abort, render_template, request, url_for
from sqlalchemy.exc import SQLAlchemyError

from newsletter.core.extensions import db
from newsletter.inquiries import clinicians, routing
from newsletter.models import Clinician
from newsletter.public.blueprint import bp


@bp.get("/team")
def team():
    if not routing.is_group():
        abort(404)
    return render_template("public/team.html", team=routing.team())


@bp.get("/team/photo/<int:clinician_id>/<version>.jpg")
def clinician_photo(clinician_id: int, version: str):
    """A clinician's photo. Its URL names its content's hash, so it may be cached for a year: a new photo is a
    new URL, and an old URL answers 404."""
    photo = clinicians.photo(clinician_id, version)
    if photo is None:
        abort(404)
    response = Response(photo, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.set_etag(version)
    return response.make_conditional(request)


@bp.app_template_global()
def clinician_photo_url(clinician: Clinician) -> str | None:
    """Where the clinician's current photo is (the team page and their profile page), None without one."""
    if not clinician.photo_version:
        return None
    return url_for("public.clinician_photo", clinician_id=clinician.id, version=clinician.photo_version)


@bp.app_template_global()
def group_practice() -> bool:
    """Whether pages show the team link (base.html): also rendered when the database is down, so never fails."""
    try:
        return routing.is_group()
    except SQLAlchemyError:
        db.session.rollback()
        return False
