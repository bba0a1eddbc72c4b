"""The web archive of sent issues, the Atom feed, and the latest issues on the home page."""
from __future__ import annotations

import re

from flask import abort, render_template, request

from newsletter.accounts import practice
from newsletter.core.config import settings
from newsletter.core.web_extensions import csrf
from newsletter.public.blueprint import bp
from newsletter.public.forms import SubscribeForm
from newsletter.publishing import issues


@bp.app_context_processor
def latest_issues_helper():
    """`latest_issues(n)` for the home page's list of recent articles."""
    return {"latest_issues": lambda limit=5: issues.published(limit)}


@bp.get("/issues")
def archive():
    return render_template("public/issues.html", issues=issues.published(), form=SubscribeForm())


# What issues.slugify makes; anything else (a NUL, a quote) names no issue and never reaches the database.
_SLUG = re.compile(r"[a-z0-9-]{1,200}\Z")


@bp.get("/issues/<slug>")
def issue_page(slug: str):
    issue = issues.web_page_by_slug(slug) if _SLUG.match(slug) else None
    if issue is None and request.args.get("preview"):  # a test copy's "View in browser", before sending
        issue = issues.by_preview_token(slug, request.args["preview"])
    if issue is None:
        abort(404)
    return render_template("public/issue.html", issue=issue, form=SubscribeForm(),
                           url=issues.web_url(issue), contact_items=issues.contact_items(practice.profile()))


@bp.get("/issues/test-copy")
def test_copy_unsubscribe():
    """Where a test copy's unsubscribe link leads: nobody is unsubscribed."""
    return render_template("public/issue_test_copy.html")


@bp.post("/issues/test-copy")
@csrf.exempt  # a mail client's one-click unsubscribe of a test copy lands here
def test_copy_one_click():
    """A mail client's one-click unsubscribe of a test copy: nobody is unsubscribed either."""
    return render_template("public/issue_test_copy.html")


@bp.get("/feed.xml")
def feed():
    entries = issues.published(20)
    body = render_template("public/feed.xml", issues=entries, base_url=settings().base_url)
    return body, 200, {"Content-Type": "application/atom+xml; charset=utf-8"}
