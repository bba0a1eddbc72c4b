"""The click redirect, used only while the practice counts clicks (publishing/clicks.py): a signed URL per
issue and link, the same for every reader. GET counts one click and redirects; HEAD (link scanners) counts
nothing. A tampered URL, or one naming no link, is a 404: it never redirects anywhere else."""
from __future__ import annotations

from flask import abort, redirect, request

from newsletter.core.extensions import db
from newsletter.public.blueprint import bp
from newsletter.publishing import clicks


@bp.get("/r/<int:issue_id>/<int:link>/<signature>")
def click(issue_id: int, link: int, signature: str):
    target = clicks.target(issue_id, link, signature)
    if target is None:
        abort(404)
    if request.method == "GET":
        clicks.count(issue_id, link)
        db.session.commit()
    response = redirect(target, code=302)
    response.headers["Cache-Control"] = "no-store"  # every click is counted, none answered from a cache
    return response
