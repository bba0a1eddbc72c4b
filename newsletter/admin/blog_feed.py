"""Admin: her website's feed, whose new posts become draft issues (newsletter/publishing/feeds.py)."""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from newsletter.admin.blueprint import audit_action, bp
from newsletter.admin.forms import BlogFeedForm
from newsletter.core.extensions import db
from newsletter.publishing import feeds


def _page(form: BlogFeedForm | None = None, status: int = 200):
    row = feeds.current()
    form = form or BlogFeedForm(formdata=None, url=row.url if row else "")
    return render_template("admin/blog_feed.html", form=form, feed=row, posts=feeds.recent_posts()), status


@bp.get("/blog-feed")
def blog_feed():
    return _page()


@bp.post("/blog-feed")
def blog_feed_save():
    """Keep the feed's address and read it at once, so she sees whether it works."""
    form = BlogFeedForm()
    if not form.validate():
        return _page(form, 400)
    try:
        row = feeds.set_url(form.url.data)
    except feeds.FeedError as exc:
        form.url.errors.append(str(exc))
        db.session.rollback()
        return _page(form, 400)
    audit_action("blog_feed_set", row.url[:200] or "(none)")
    db.session.commit()
    return _checked("Saved." if row.url else "Saved: no feed is read now.")


@bp.post("/blog-feed/check")
def blog_feed_check():
    return _checked("")


def _checked(saved: str):
    result = feeds.poll()
    db.session.commit()
    if result.error:
        flash(f"{saved} The feed could not be read: {result.error}".strip())
    elif feeds.current() and feeds.current().url:
        made = len(result.drafts)
        news = f"{made} new draft{'s' if made != 1 else ''}" if made or not result.not_modified else "nothing new"
        flash(f"{saved} Feed read: {news}.".strip())
    else:
        flash(saved)
    return redirect(url_for("admin.blog_feed"))
