"""Admin: reach without surveillance. Per issue and per list, what happened in the week after sending
(sending/reach.py), and the switch for click counts per link (off by default; publishing/clicks.py)."""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from newsletter.accounts import practice
from newsletter.admin.blueprint import audit_action, bp
from newsletter.admin.forms import ClickCountsForm, ReplyUploadForm
from newsletter.core.extensions import db
from newsletter.publishing import clicks
from newsletter.sending import reach, replies


def _reach_page(reply_form: ReplyUploadForm | None = None, status: int = 200):
    rows = reach.by_issue()
    counting = clicks.enabled()
    if counting:
        for row in rows:
            row.clicks = reach.clicks(row.issue, clicks.links(row.issue.email_html))
    return render_template("admin/reach.html", rows=rows, lists=reach.by_list(rows), counting=counting,
                           window_days=reach.WINDOW.days, figures=reach.FIGURES,
                           form=ClickCountsForm(formdata=None, count_clicks=counting),
                           reply_form=reply_form or ReplyUploadForm(formdata=None)), status


@bp.get("/reach")
def reach_page():
    return _reach_page()


@bp.post("/reach/replies")
def reach_reply():
    """Count a reader's reply she saved from her mail program: the issue it answers, nothing of who or what."""
    form = ReplyUploadForm()
    if form.validate():
        try:
            counted = replies.count(form.message.data.stream.read(replies.MAX_REPLY_BYTES + 1))
        except replies.NotAReply as exc:
            form.message.errors.append(f"That was not counted: {exc}.")
        else:
            db.session.commit()
            flash(f"A reply to \u201c{counted.issue.title}\u201d: "
                  + ("counted." if counted.new else "it was counted before, so not again."))
            return redirect(url_for("admin.reach_page"))
    return _reach_page(form, 400)


@bp.post("/reach/clicks")
def reach_clicks():
    """Turn click counts on or off; issues sent from then on carry (or not) the counting links."""
    form = ClickCountsForm()
    if not form.validate():
        flash("That did not save: please try again.")
        return redirect(url_for("admin.reach_page"))
    audit_action("click counts", "on" if form.count_clicks.data else "off")
    practice.ensure_profile().count_clicks = bool(form.count_clicks.data)
    db.session.commit()
    flash("Saved. Links in issues sent from now on are counted per link, never per reader." if form.count_clicks.data
          else "Saved. Links in issues sent from now on go straight to their address, uncounted.")
    return redirect(url_for("admin.reach_page"))
